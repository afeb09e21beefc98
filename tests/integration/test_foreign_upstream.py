"""A foreign OpenAI-compatible server as a version's upstream: `llamafactory-cli api` serving the tiny model on the
CPU, registered with `llmops models register --upstream-url`, reached through a live gateway.

The server's start (LLaMA-Factory's imports) is slow, so one serves the whole module; the last test kills it.
"""

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from llmops.cli import app as cli
from llmops.models import registry
from llmops.models.metrics import version_metrics
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer, free_port
from llmops.workspace import Workspace, init_workspace

pytestmark = pytest.mark.integration
START_TIMEOUT_S = 120
GREEDY = {"messages": [{"role": "user", "content": "Can I return the desk lamp?"}], "temperature": 0,
          "max_tokens": 8}


@dataclass
class Upstream:
    url: str
    key: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


@dataclass
class Gateway:
    url: str
    workspace: Workspace
    version: str
    upstream: Upstream


def _wait_ready(upstream: Upstream) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    headers = {"Authorization": f"Bearer {upstream.key}"}
    while time.monotonic() < deadline:
        if upstream.process.poll() is not None:
            code = upstream.process.returncode
            pytest.fail(f"llamafactory-cli api exited {code}: {upstream.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{upstream.url}/v1/models", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    upstream.stop()
    pytest.fail(f"llamafactory-cli api: not ready after {START_TIMEOUT_S} s: {upstream.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Upstream]:
    """`llamafactory-cli api` (the line docs/operations.md gives) on 127.0.0.1, with an API key."""
    port, key = free_port(), secrets.token_hex(8)
    log = tmp_path_factory.mktemp("llamafactory") / "api.log"
    env = {**os.environ, "API_HOST": "127.0.0.1", "API_PORT": str(port), "API_KEY": key,
           "API_MODEL_NAME": "chat-v1.0", "OMP_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "llamafactory-cli"), "api", "--model_name_or_path",
               str(tiny_model_dir), "--template", "qwen", "--infer_backend", "huggingface"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Upstream(f"http://127.0.0.1:{port}", key, process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, upstream: Upstream) -> Iterator[Gateway]:
    """A gateway whose only version is registered with the CLI as served by `upstream`."""
    workspace = init_workspace(tmp_path_factory.mktemp("gateway") / "ws")
    result = CliRunner().invoke(cli, ["models", "register", "--path", str(tiny_model_dir), "--upstream-url",
                                      f"{upstream.url}/v1", "--workspace", str(workspace.root)])
    assert result.exit_code == 0, result.output
    (version,) = registry.list_versions(workspace)
    assert version.upstream_url == f"{upstream.url}/v1"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(workspace.settings.serve.upstream_api_key_env, upstream.key)
        with BackgroundServer(create_app(workspace)) as server:
            yield Gateway(server.url, workspace, version.name, upstream)


def direct(upstream: Upstream, **body: Any) -> httpx.Response:
    """The upstream's own answer to `body` (the model name is not one it checks)."""
    return httpx.post(f"{upstream.url}/v1/chat/completions", json={"model": "chat-v1.0", **body},
                      headers={"Authorization": f"Bearer {upstream.key}"}, timeout=60)


def chat(gateway: Gateway, **body: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": gateway.version, **body}, timeout=60)


def sse_events(text: str) -> list[Any]:
    """The data of each server-sent event; `[DONE]` as the string."""
    events = [block for block in text.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events), text
    return [block[6:] if block == "data: [DONE]" else json.loads(block[6:]) for block in events]


def test_completion_relays_the_upstream_answer(gateway: Gateway) -> None:
    own = direct(gateway.upstream, **GREEDY)
    assert own.status_code == 200, own.text
    assert httpx.post(f"{gateway.upstream.url}/v1/chat/completions", json={"model": "x", **GREEDY}).status_code == 401
    answer = chat(gateway, **GREEDY)
    assert answer.status_code == 200, answer.text
    body, expected = answer.json(), own.json()
    assert body["model"] == gateway.version and answer.headers["X-LLMOps-Model"] == gateway.version
    assert body["choices"][0]["message"]["content"] == expected["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == expected["choices"][0]["finish_reason"]
    assert body["usage"] == expected["usage"] and body["usage"]["completion_tokens"] > 0
    shorter = chat(gateway, **{**GREEDY, "max_tokens": 3}).json()
    assert shorter["usage"]["completion_tokens"] <= 3  # the sampling parameters reach the upstream


def test_stream_relays_the_upstream_pieces(gateway: Gateway) -> None:
    text = chat(gateway, **GREEDY)
    expected = text.json()["choices"][0]["message"]["content"]
    answer = chat(gateway, **GREEDY, stream=True, stream_options={"include_usage": True})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    events = sse_events(answer.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert streamed == expected
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] in ("stop", "length")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert all(c["model"] == gateway.version for c in chunks)


def test_upstream_refusal_is_a_clean_400(gateway: Gateway) -> None:
    before = version_metrics(gateway.workspace, gateway.version)
    pair = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}]  # LLaMA-Factory wants u/a/u
    assert direct(gateway.upstream, messages=pair).status_code == 400
    answer = chat(gateway, messages=pair)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and "Only supports u/a/u/a/u" in error["message"]
    assert version_metrics(gateway.workspace, gateway.version).requests == before.requests  # not the version's fault
    broken = chat(gateway, messages=pair, stream=True)  # LLaMA-Factory refuses a stream by breaking it off
    assert broken.status_code == 502 and broken.json()["error"]["type"] == "server_error"


def test_killed_upstream_is_a_clean_502_counted_as_the_versions_error(gateway: Gateway) -> None:
    before = version_metrics(gateway.workspace, gateway.version)
    assert chat(gateway, **GREEDY).status_code == 200
    gateway.upstream.stop()
    failed = [chat(gateway, **GREEDY), chat(gateway, **GREEDY, stream=True)]
    for answer in failed:
        assert answer.status_code == 502 and answer.headers["content-type"] == "application/json"
        error = answer.json()["error"]
        assert error["type"] == "server_error" and gateway.version in error["message"]
        assert "Traceback" not in answer.text
    after = version_metrics(gateway.workspace, gateway.version)
    assert (after.requests, after.errors) == (before.requests + 3, before.errors + 2)
    served = httpx.get(f"{gateway.url}/v1/metrics", timeout=10).json()
    (row,) = [m for m in served["models"] if m["model"] == gateway.version]
    assert (row["requests"], row["errors"]) == (after.requests, after.errors)
    prometheus = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert f'llmops_requests_total{{model="{gateway.version}",status="error"}}' in prometheus
