"""The gateway's background worker threads (database writer, vote batcher, decoder): none dies of a caller, and
one that dies anyway is never silent.

A caller that goes away (a client that hung up) cancels its future, and setting the result of a cancelled
future raises: workers give results with `settle`, which lets a cancelled future be. An exception that still
ends a worker's loop is logged with its traceback and kept as the worker's `failure`; the worker answers
everyone waiting on it with `WorkerDied` and refuses new work, `/health` reports it, and the gateway's
watchdog stops the server, so that its supervisor restarts it (see `serve/health.py`).
"""

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

STOP_TIMEOUT_S = 30.0  # how long closing waits for a worker to finish its queue
log = logging.getLogger("llmops.serve")


class WorkerDied(RuntimeError):
    """The worker that would do this is dead (the gateway answers 503 and shuts down)."""


def settle(future: "Future[Any]", result: object) -> None:
    """Give `future` its result (an exception fails it); a future its caller cancelled meanwhile is left alone."""
    try:
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


def fail_waiting(running: Iterable["Future[Any]"], waiting: "queue.Queue[tuple[Any, Future[Any]] | None]",
                 error: BaseException) -> None:
    """Fail the futures of a dead worker: those it was running and those still queued (`(request, future)`)."""
    for future in running:
        settle(future, error)
    while True:
        try:
            entry = waiting.get_nowait()
        except queue.Empty:
            return
        if entry is not None:
            settle(entry[1], error)


@dataclass(frozen=True)
class WorkerHealth:
    name: str
    alive: bool
    queued: int  # requests waiting for the worker (approximate: read without its lock)
    failure: str  # what ended it; empty while alive


class WorkerThread:
    """A daemon thread running `loop`. If `loop` raises, the thread ends loudly: the error is logged and kept in
    `failure`, and `on_death` runs (it must answer whoever still waits on the worker)."""

    def __init__(self, name: str, loop: Callable[[], None], on_death: Callable[[], None]) -> None:
        self.name = name
        self.failure = ""
        self._loop, self._on_death = loop, on_death
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def died(self) -> WorkerDied:
        return WorkerDied(f"worker {self.name} died ({self.failure}); the gateway is shutting down")

    def check(self) -> None:
        """Raise `WorkerDied` if the worker is dead."""
        if self.failure:
            raise self.died()

    def join(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Wait for the loop to end, at most `timeout_s`: a dead or stuck worker never holds up a shutdown."""
        if self._thread.ident is None:
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("worker %s: still busy after %.0f s; not waiting for it any longer", self.name, timeout_s)

    def health(self, queued: int) -> WorkerHealth:
        return WorkerHealth(self.name, not self.failure, queued, self.failure)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the worker is gone: say so, and answer everyone waiting on it
            self.failure = f"{type(exc).__name__}: {exc}"
            log.critical("worker %s died: %s", self.name, self.failure, exc_info=exc)
            self._on_death()
