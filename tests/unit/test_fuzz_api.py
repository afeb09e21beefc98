"""Fuzz of the gateway's request bodies (in-process, httpx ASGI transport, injected backend).

Every malformed body gets a 4xx with an OpenAI-style JSON error (never a 500 or an exception out of the app),
and a rejected request writes nothing: every table keeps its row count.
"""

import json
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fakes import stream_of
from llmops import db
from llmops.inference.types import Chunk, Completion, Message, Sampling
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.anyio

WRONG_VALUES: list[Any] = [None, True, 0, -1, 1.5, 10**30, -(10**30), 1e308, "x", "", "y" * 3000, [], {}, [1],
                           {"a": 1}, "../../etc/passwd", "\ud800"]
CHAT = {"model": "production", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8,
        "temperature": 0.5, "top_p": 0.9, "top_k": 5, "repetition_penalty": 1.1, "stream": False, "user": "u"}
BATTLE = {"prompt": "hi", "user": "u", "max_tokens": 8, "temperature": 0.5}
RAW_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""), ("null", b"null"), ("list", b"[]"), ("string", b'"hi"'), ("number", b"42"),
    ("nan", b'{"messages": NaN}'), ("infinity", b'{"temperature": Infinity}'), ("nested", b"[" * 5000 + b"]" * 5000),
    ("nested_object", b'{"a":' * 3000 + b"1" + b"}" * 3000), ("invalid_utf8", b'{"prompt": "\xff\xfe"}'),
    ("binary", bytes(range(256))), ("nul", b'{"prompt": "a\x00b"}' + b"\x00"), ("bom", b"\xef\xbb\xbf{}"),
    ("trailing", b'{"prompt": "hi"} {"prompt": "again"}'), ("single_quotes", b"{'prompt': 'hi'}"),
]


@dataclass(frozen=True)
class Case:
    label: str
    path: str
    content: bytes
    content_type: str = "application/json"
    admin: bool = False


class Echo:
    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        return Completion(f"{model}: {messages[-1]['content'][:20]}", 1, 1, "stop")

    def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk]:
        return stream_of(self, model, messages, sampling)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(workspace: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    small = open_workspace(workspace.root, ["serve.max_body_bytes=8192", "serve.max_prompt_chars=2000",
                                            "auth.open_arena=true"])
    app = create_app(small, backends={"chat-v1.0": Echo(), "chat-v2.0": Echo()})
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://g") as http:
        yield http


def _dump(body: Any) -> bytes:
    return json.dumps(body).encode()


def field_mutations(seed: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """`seed` with each field removed, set to each wrong value, and with an unknown key added."""
    for key in seed:
        yield f"{key}:missing", {k: v for k, v in seed.items() if k != key}
        for value in WRONG_VALUES:
            yield f"{key}={str(value)[:12]!r}", {**seed, key: value}
    yield "unknown_key", {**seed, "__unknown__": 1}


def body_mutations(seed: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """Raw-body variants of `seed`: truncations, then the shared malformed bodies."""
    text = _dump(seed)
    for cut in (1, len(text) // 3, len(text) // 2, len(text) - 1):
        yield f"truncated@{cut}", text[:cut]
    yield from RAW_BODIES


def malformed_cases(battle_id: str, completion_id: str) -> Iterator[Case]:
    message = CHAT["messages"][0]
    for label, body in field_mutations(CHAT):
        yield Case(f"chat {label}", "/v1/chat/completions", _dump(body))
    for label, item in field_mutations(message):
        yield Case(f"chat message {label}", "/v1/chat/completions", _dump({**CHAT, "messages": [item]}))
    for label, body in field_mutations(BATTLE):
        yield Case(f"battle {label}", "/v1/arena/battles", _dump(body))
    for label, body in field_mutations({"vote": "a"}):
        yield Case(f"vote {label}", f"/v1/arena/battles/{battle_id}/vote", _dump(body))
    for label, body in field_mutations({"completion_id": completion_id, "score": "up", "user": CHAT["user"]}):
        yield Case(f"feedback {label}", "/v1/feedback", _dump(body))
    for label, body in field_mutations({"traffic": 0.5}):
        yield Case(f"traffic {label}", "/v1/admin/traffic", _dump(body), admin=True)
    for label, body in field_mutations({"candidate": "chat-v2.0"}):
        yield Case(f"rollout {label}", "/v1/admin/rollout", _dump(body), admin=True)
    for path, seed in (("/v1/chat/completions", CHAT), ("/v1/arena/battles", BATTLE), ("/v1/feedback", {})):
        for label, content in body_mutations(seed):
            yield Case(f"{path} {label}", path, content)
        yield Case(f"{path} text/plain", path, _dump(seed), content_type="text/plain")
    for name in ("../x", "..%2F..%2Fetc", "x" * 500, "%00", "chat-v9.9"):
        yield Case(f"vote on {name}", f"/v1/arena/battles/{name}/vote", _dump({"vote": "a"}))


def _row_counts(workspace: Workspace) -> dict[str, int]:
    with workspace.engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in db.metadata.tables.items()}


async def _post(client: httpx.AsyncClient, case: Case, token: str) -> httpx.Response:
    headers = {"content-type": case.content_type}
    if case.admin:
        headers["authorization"] = f"Bearer {token}"
    return await client.post(case.path, content=case.content, headers=headers)


async def _seed_ids(client: httpx.AsyncClient) -> tuple[str, str]:
    battle = await client.post("/v1/arena/battles", json=BATTLE)
    chat = await client.post("/v1/chat/completions", json=CHAT)
    assert battle.status_code == 200 and chat.status_code == 200
    return battle.json()["id"], chat.json()["id"]


async def test_malformed_bodies_get_clear_4xx_and_write_nothing(client: httpx.AsyncClient,
                                                                 workspace: Workspace) -> None:
    battle_id, completion_id = await _seed_ids(client)
    outcomes: Counter[int] = Counter()
    for case in malformed_cases(battle_id, completion_id):
        before = _row_counts(workspace)
        response = await _post(client, case, workspace.admin_token())
        outcomes[response.status_code] += 1
        assert response.status_code < 500, (case.label, response.text[:300])
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"] == response.status_code and error["message"], case.label
            assert _row_counts(workspace) == before, case.label
    rejected = sum(n for status, n in outcomes.items() if status >= 400)
    assert rejected >= 200, outcomes
    assert set(outcomes) <= {200, 400, 403, 404, 409, 413, 422}, outcomes  # 403: a thumb from another user


async def test_a_vote_is_taken_once_and_a_second_one_changes_nothing(client: httpx.AsyncClient,
                                                                      workspace: Workspace) -> None:
    battle_id, _ = await _seed_ids(client)
    first = await client.post(f"/v1/arena/battles/{battle_id}/vote", json={"vote": "b"})
    assert first.status_code == 200
    before = _row_counts(workspace)
    for vote in ("a", "tie", "both_bad", "b"):
        again = await client.post(f"/v1/arena/battles/{battle_id}/vote", json={"vote": vote})
        assert 400 <= again.status_code < 500 and again.json()["error"]["message"]
    assert _row_counts(workspace) == before
