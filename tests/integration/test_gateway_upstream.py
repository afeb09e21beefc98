"""Upstream backends: versions served by other OpenAI-compatible servers on 127.0.0.1, one of them faulty."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from llmops.inference.engine import InferenceModel
from llmops.models import registry
from llmops.models.metrics import version_metrics
from llmops.serve.faults import create_faulty_upstream
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer
from llmops.workspace import Workspace, init_workspace

pytestmark = pytest.mark.integration
MESSAGES = [{"role": "user", "content": "Can I return the desk lamp?"}]


def register(workspace: Workspace, base: str, upstream_url: str = "") -> str:
    version = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=base,
                                        path=base, merged=True, upstream_url=upstream_url)
    return version.name


def streamed_text(events: str) -> str | None:
    """The text of an SSE body, or None for an error answer."""
    if not events.startswith("data:"):
        return None
    bodies = [json.loads(e[5:]) for e in events.split("\n\n") if e.startswith("data:") and e != "data: [DONE]"]
    return "".join(b["choices"][0]["delta"].get("content", "") for b in bodies if b["choices"])


def test_versions_served_by_upstream_servers(tmp_path: Path, tiny_model_dir: Path) -> None:
    engine = InferenceModel(max_batch_size=8)
    engine.load_model("chat-v1.0", str(tiny_model_dir))
    expected = engine.chat("chat-v1.0", MESSAGES, temperature=0, max_tokens=10)
    remote = init_workspace(tmp_path / "remote")
    register(remote, str(tiny_model_dir))
    faulty = create_faulty_upstream(engine, "chat-v1.0", error_rate=0.5, extra_latency_ms=60)
    healthy = create_app(remote, engine=engine)
    with BackgroundServer(healthy) as healthy_server, BackgroundServer(faulty) as bad:
        local = init_workspace(tmp_path / "local")
        good_name = register(local, "unused", upstream_url=f"{healthy_server.url}/v1")
        bad_name = register(local, "unused", upstream_url=bad.url)

        async def calls() -> tuple[httpx.Response, list[httpx.Response], list[str]]:
            app = create_app(local)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=60) as client:
                    body = {"messages": MESSAGES, "temperature": 0, "max_tokens": 10}
                    good = await client.post("/v1/chat/completions", json={**body, "model": good_name})
                    flaky = [await client.post("/v1/chat/completions", json={**body, "model": bad_name})
                             for _ in range(20)]
                    streams = [(await client.post("/v1/chat/completions", json={**body, "model": model,
                                                                                 "stream": True})).text
                               for model in (good_name, bad_name, bad_name)]
                    return good, flaky, streams

        good, flaky, streams = asyncio.run(calls())
    engine.close()
    assert good.status_code == 200
    assert good.json()["model"] == good_name
    assert good.json()["choices"][0]["message"]["content"] == expected.text
    statuses = [r.status_code for r in flaky]
    assert set(statuses) == {200, 502}
    assert all(r.json()["choices"][0]["message"]["content"] == expected.text for r in flaky if r.status_code == 200)
    streamed = [streamed_text(events) for events in streams]
    assert streamed[0] == expected.text and len(streams[0].split("\n\n")) > 5  # relayed piece by piece
    assert expected.text in streamed[1:]  # one of two goes through the faulty server (as one piece)
    metrics = version_metrics(local, bad_name)
    assert metrics.requests == 22 and metrics.errors == statuses.count(502) + 1
    assert metrics.latency_p50_ms >= 60
    assert version_metrics(local, good_name).error_rate == 0.0
