"""The gateway in-process (httpx ASGI transport) with an injected backend: routes, errors, arena, admin, metrics."""

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fakes import stream_of
from llmops import db
from llmops.data.preferences import export_preferences
from llmops.inference.types import BackendError, Chunk, Completion, Message, Sampling
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace, open_workspace

pytestmark = [pytest.mark.store, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class EchoBackend:
    """A ChatBackend that answers with the model name and the last message; fails when the prompt says so."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Sampling]] = []

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        self.calls.append((model, sampling))
        if messages[-1]["content"] == "fail":
            raise BackendError("upstream down")
        text = f"{model} says {messages[-1]['content']} #{len(self.calls)}"
        return Completion(text, 5, len(text.split()), "stop")

    def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk]:
        return stream_of(self, model, messages, sampling)


@pytest.fixture
def backend() -> EchoBackend:
    return EchoBackend()


@pytest.fixture
async def client(workspace: Workspace, backend: EchoBackend) -> AsyncIterator[httpx.AsyncClient]:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    public = open_workspace(workspace.root, ["auth.open_arena=true"])  # the arena's voters need no sign-in
    app = create_app(public, backends={"chat-v1.0": backend, "chat-v2.0": backend})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


def chat(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


async def test_chat_completion_carries_id_and_version(client: httpx.AsyncClient, backend: EchoBackend) -> None:
    response = await client.post("/v1/chat/completions", json=chat(temperature=0, max_tokens=7))
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "chat-v1.0" and body["id"].startswith("chatcmpl-")
    assert response.headers["x-llmops-model"] == "chat-v1.0"
    assert body["choices"][0]["message"]["content"].startswith("chat-v1.0 says hi")
    assert backend.calls[-1][1] == Sampling(max_tokens=7, temperature=0, top_p=0.9, top_k=50, repetition_penalty=1.1)
    by_name = await client.post("/v1/chat/completions", json=chat(model="chat-v2.0"))
    assert by_name.json()["model"] == "chat-v2.0"


async def test_stream_sends_chunks_then_done(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat("one two three", stream=True))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.startswith("chat-v1.0 says one two three")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (chat(model="chat-v9.9"), 404),
        (chat(model="../etc"), 404),
        (chat(model="candidate"), 404),
        ({"messages": []}, 422),
        ({"messages": [{"role": "robot", "content": "x"}]}, 422),
        (chat(temperature=-1), 422),
        (chat(max_tokens=100_000), 400),
        (chat("x" * 9000), 400),
        ([1, 2], 422),
    ],
)
async def test_bad_input_is_a_4xx(client: httpx.AsyncClient, body: Any, status: int) -> None:
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == status
    assert response.json()["error"]["message"]


async def test_bad_json_and_large_bodies(client: httpx.AsyncClient) -> None:
    bad = await client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422
    huge = await client.post("/v1/chat/completions", content=b"x" * 1_100_000,
                             headers={"content-type": "application/json"})
    assert huge.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 60_000

    streamed = await client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


async def test_backend_failure_is_502_and_counted(client: httpx.AsyncClient, workspace: Workspace) -> None:
    response = await client.post("/v1/chat/completions", json=chat("fail"))
    assert response.status_code == 502
    await client.post("/v1/chat/completions", json=chat("ok"))
    metrics = (await client.get("/v1/metrics")).json()["models"]
    row = next(m for m in metrics if m["model"] == "chat-v1.0")
    assert (row["requests"], row["errors"], row["error_rate"]) == (2, 1, 0.5)
    text = (await client.get("/metrics")).text
    assert 'llmops_requests_total{model="chat-v1.0",status="error"} 1.0' in text
    assert 'llmops_requests_total{model="chat-v1.0",status="ok"} 1.0' in text


async def test_feedback_on_a_completion(client: httpx.AsyncClient) -> None:
    completion = (await client.post("/v1/chat/completions", json=chat())).json()
    for score in ("up", -1, "down"):
        ok = await client.post("/v1/feedback", json={"completion_id": completion["id"], "score": score})
        assert ok.status_code == 200 and ok.json()["model"] == "chat-v1.0"
    assert (await client.post("/v1/feedback", json={"completion_id": "nope", "score": "up"})).status_code == 404
    assert (await client.post("/v1/feedback", json={"completion_id": completion["id"], "score": 3})).status_code == 422
    metrics = (await client.get("/v1/metrics")).json()["models"]
    assert metrics[0]["feedback_score"] == -1.0  # one requester's thumbs: the last one counts
    other = await client.post("/v1/feedback", json={"completion_id": completion["id"], "score": "up", "user": "u2"})
    assert other.status_code == 200  # served to no user: any thumb replaces the one there
    assert (await client.get("/v1/metrics")).json()["models"][0]["feedback_score"] == 1.0


async def test_battle_vote_lands_one_pair_and_votes_once(client: httpx.AsyncClient, workspace: Workspace) -> None:
    registry.set_alias(workspace, "candidate", "chat-v2.0")
    battle = (await client.post("/v1/arena/battles", json={"prompt": "which cable?", "user": "u1"})).json()
    assert set(battle) == {"id", "prompt", "response_a", "response_b"}
    vote = await client.post(f"/v1/arena/battles/{battle['id']}/vote", json={"vote": "a"})
    assert vote.status_code == 200
    revealed = vote.json()
    assert {revealed["model_a"], revealed["model_b"]} == {"chat-v1.0", "chat-v2.0"}
    assert battle["response_a"].startswith(revealed["model_a"])
    again = await client.post(f"/v1/arena/battles/{battle['id']}/vote", json={"vote": "b"})
    assert again.status_code == 409
    assert (await client.post("/v1/arena/battles/battle-x/vote", json={"vote": "a"})).status_code == 404
    assert (await client.post(f"/v1/arena/battles/{battle['id']}/vote", json={"vote": "c"})).status_code == 422
    with workspace.engine.connect() as conn:
        row = conn.execute(select(db.votes)).one()
    assert row.choice == "a" and row.id == battle["id"] and row.user == "u1"
    assert row.meta["model_a"] == revealed["model_a"] and row.meta["sampling"]["temperature"] == 0.7
    pairs = [json.loads(line) for line in export_preferences(workspace).latest_path.read_text().splitlines()]
    assert len(pairs) == 1 and pairs[0]["chosen"]["content"] == battle["response_a"]
    board = (await client.get("/v1/arena/leaderboard")).json()["ratings"]
    assert board[0]["model"] == revealed["model_a"]


async def test_concurrent_votes_share_commits(client: httpx.AsyncClient, workspace: Workspace) -> None:
    battles = [(await client.post("/v1/arena/battles", json={"prompt": f"q{i}"})).json()["id"] for i in range(40)]
    responses = await asyncio.gather(
        *(client.post(f"/v1/arena/battles/{b}/vote", json={"vote": "tie"}) for b in battles),
        *(client.post(f"/v1/arena/battles/{b}/vote", json={"vote": "a"}) for b in battles[:10]),
    )
    assert sorted(r.status_code for r in responses) == [200] * 40 + [409] * 10
    with workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.votes)).scalar() == 40


async def test_admin_needs_the_bearer_token(client: httpx.AsyncClient, workspace: Workspace) -> None:
    assert (await client.post("/v1/admin/promote", json={"model": "chat-v2.0"})).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert (await client.post("/v1/admin/promote", json={"model": "chat-v2.0"}, headers=wrong)).status_code == 401
    auth = {"Authorization": f"Bearer {workspace.admin_token()}"}
    promoted = await client.post("/v1/admin/promote", json={"model": "chat-v2.0"}, headers=auth)
    assert promoted.json() == {"production": "chat-v2.0", "previous": "chat-v1.0"}
    assert (await client.post("/v1/chat/completions", json=chat())).json()["model"] == "chat-v2.0"
    assert (await client.post("/v1/admin/rollback", headers=auth)).json() == {"production": "chat-v1.0"}
    assert (await client.post("/v1/admin/traffic", json={"traffic": 0.5}, headers=auth)).status_code == 400
    assert (await client.post("/v1/admin/traffic", json={"traffic": 2}, headers=auth)).status_code == 422
    assert (await client.post("/v1/admin/models/chat-v9.9/load", headers=auth)).status_code == 404


async def test_admin_rollout_traffic_routes_users(client: httpx.AsyncClient, workspace: Workspace) -> None:
    auth = {"Authorization": f"Bearer {workspace.admin_token()}"}
    started = await client.post("/v1/admin/rollout", json={"candidate": "chat-v2.0"}, headers=auth)
    assert started.json()["traffic"] == 0.05
    assert (await client.post("/v1/admin/traffic", json={"traffic": 1.0}, headers=auth)).status_code == 200
    served = await client.post("/v1/chat/completions", json=chat(user="someone"))
    assert served.json()["model"] == "chat-v2.0"
    assert (await client.post("/v1/admin/rollback", headers=auth)).json()["rolled_back"] == "chat-v2.0"
    assert (await client.post("/v1/chat/completions", json=chat(user="someone"))).json()["model"] == "chat-v1.0"


async def test_models_lists_aliases_and_versions(client: httpx.AsyncClient) -> None:
    ids = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
    assert ids == ["production", "chat-v1.0", "chat-v2.0"]
