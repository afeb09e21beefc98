"""Live gateways on 127.0.0.1: an ASGI app in a background thread (`BackgroundServer`), or `llmops serve` in a
child process (`GatewayProcess`), each on a free port unless told otherwise.

Used where a live HTTP server is needed next to other work: the demo (a gateway, or a faulty upstream for
the rollout guardrails), the benchmarks and the tests that talk to a real socket or kill the server.
`GatewayServer` is the uvicorn server of all of them and of `llmops serve`/`llmops ui`: it stops by itself once
the gateway's watchdog found a dead worker, and never waits more than GRACEFUL_SHUTDOWN_S for open requests.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from llmops.errors import LLMOpsError
from llmops.serve.state import ServeState

GRACEFUL_SHUTDOWN_S = 10  # at shutdown, open requests (streams) get this long to finish, then are cancelled


class GatewayServer(uvicorn.Server):
    """uvicorn serving `app`; for a gateway app, it shuts down once a background worker died (`failure`)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
        super().__init__(uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on",
                                        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
        serve = getattr(getattr(app, "state", None), "serve", None)
        self._state = serve if isinstance(serve, ServeState) else None

    @property
    def failure(self) -> str:
        """Why the gateway stopped by itself (a dead worker); empty otherwise."""
        return self._state.failure if self._state else ""

    async def on_tick(self, counter: int) -> bool:
        return bool(self.failure) or await super().on_tick(counter)

    def run_gateway(self) -> None:
        """Serve until stopped; raise LLMOpsError (exit code 1) if it did not start or a dead worker stopped it."""
        self.run()
        if self.failure:
            raise LLMOpsError(f"gateway stopped: {self.failure}")
        if not self.started:
            raise LLMOpsError(f"gateway on {self.config.host}:{self.config.port}: did not start (see the log above)")


class BackgroundServer:
    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 30.0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = GatewayServer(app, log_level="warning")
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"uvicorn-{self.port}", daemon=True)
        self._start_timeout_s = start_timeout_s

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LLMOpsError(f"server on {self.url}: did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for a child process that binds it itself)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """`llmops serve` in a child process on 127.0.0.1 and a free port; started when constructed."""

    def __init__(self, workspace_root: Path, log_path: Path, overrides: Sequence[str] = (),
                 start_timeout_s: float = 180.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(Path(sys.executable).parent / "llmops"), "serve", "-w", str(workspace_root),
                   "--host", "127.0.0.1", "--port", str(self.port)]
        for override in overrides:
            command += ["--set", override]
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        self._wait_ready(log_path, start_timeout_s)

    def _wait_ready(self, log_path: Path, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise LLMOpsError(f"gateway exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{self.url}/metrics", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise LLMOpsError(f"gateway on {self.url}: did not start within {timeout_s:.0f} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self._log.close()

    def __enter__(self) -> "GatewayProcess":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
