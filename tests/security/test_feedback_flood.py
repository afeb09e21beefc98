"""Feedback flood: a completion's thumb comes from the user it was served to. Varying the free `user` field of
`POST /v1/feedback` never adds rows, another user's thumb is 403, and the v3 → v4 migration records no user."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.dialects.postgresql.base import PGDialect

from fakes import Echo
from llmops import db
from llmops.models import registry
from llmops.serve import feedback
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(workspace: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    registry.set_alias(workspace, "candidate", "chat-v2.0")
    public = open_workspace(workspace.root, ["auth.open_arena=true"])
    app = create_app(public, backends={"chat-v1.0": Echo(), "chat-v2.0": Echo()})
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://g") as http:
        yield http


def _chat(**extra: object) -> dict[str, object]:
    return {"model": "production", "messages": [{"role": "user", "content": "hi"}], **extra}


def _thumbs(workspace: Workspace) -> list[tuple[str, str, int, str]]:
    table = db.feedback
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(table.c.completion_id, table.c.user, table.c.score, table.c.comment)
                            .order_by(table.c.id))
        return [(c, u, s, m) for c, u, s, m in rows]


def _served_to(workspace: Workspace) -> dict[str, str]:
    with workspace.engine.connect() as conn:
        return dict(conn.execute(select(db.requests.c.id, db.requests.c.user)).all())


async def _feedback_score(client: httpx.AsyncClient) -> float:
    models = (await client.get("/v1/metrics")).json()["models"]
    return float(next(m for m in models if m["model"] == "chat-v1.0")["feedback_score"])


async def test_ten_users_on_an_anonymous_completion_leave_one_thumb(client: httpx.AsyncClient,
                                                                    workspace: Workspace) -> None:
    completion = (await client.post("/v1/chat/completions", json=_chat())).json()["id"]
    assert _served_to(workspace) == {completion: ""}
    for i in range(10):
        body = {"completion_id": completion, "score": "down" if i < 9 else "up", "comment": f"#{i}",
                "user": f"sock{i}"}
        assert (await client.post("/v1/feedback", json=body)).status_code == 200
    assert _thumbs(workspace) == [(completion, "", 1, "#9")]
    assert await _feedback_score(client) == 1.0


async def test_a_completion_served_to_alice_takes_only_alices_thumb(client: httpx.AsyncClient,
                                                                    workspace: Workspace) -> None:
    completion = (await client.post("/v1/chat/completions", json=_chat(user="alice"))).json()["id"]
    for stranger in ({"user": "bob"}, {}):
        refused = await client.post("/v1/feedback", json={"completion_id": completion, "score": "down", **stranger})
        assert refused.status_code == 403
        message = refused.json()["error"]["message"]
        assert message == f"feedback: completion {completion!r} was served to another user"
        assert "alice" not in message
    for score, comment in (("down", "first"), ("up", "second"), (-1, "last")):
        body = {"completion_id": completion, "score": score, "comment": comment, "user": "alice"}
        assert (await client.post("/v1/feedback", json=body)).status_code == 200
    assert _thumbs(workspace) == [(completion, "alice", -1, "last")]
    assert await _feedback_score(client) == -1.0


async def test_streamed_and_arena_completions_record_their_user(client: httpx.AsyncClient,
                                                                workspace: Workspace) -> None:
    body = _chat(stream=True)
    async with client.stream("POST", "/v1/chat/completions", json=body, headers={"X-User": "carol"}) as streamed:
        assert streamed.status_code == 200 and "[DONE]" in (await streamed.aread()).decode()
        completion = streamed.headers["X-Request-Id"]
    battle = await client.post("/v1/arena/battles", json={"prompt": "which cable?", "user": "dave"})
    assert battle.status_code == 200
    served = _served_to(workspace)
    assert served.pop(completion) == "carol"
    assert sorted(served.values()) == ["dave", "dave"]
    refused = await client.post("/v1/feedback", json={"completion_id": completion, "score": "up", "user": "dave"})
    assert refused.status_code == 403


def test_thumbs_checked_before_either_store_path(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback, "_UPSERT_INSERTS", {})  # a database without INSERT … ON CONFLICT
    with workspace.engine.begin() as conn:
        for key, served in (("mine", {"user": "alice"}), ("anon", {})):  # "anon": the column's default
            conn.execute(db.requests.insert().values(id=key, model="chat-v1.0", created_at=1.0, latency_ms=1.0,
                                                     ok=True, **served))
    with pytest.raises(feedback.ForeignCompletion, match="'mine' was served to another user"):
        feedback.new_thumb(workspace, "mine", "up", user="bob")
    for user in ("x", "y", "z"):
        with workspace.engine.begin() as conn:
            feedback.store_thumb(conn, feedback.new_thumb(workspace, "anon", "down", user, user))
    assert _thumbs(workspace) == [("anon", "", -1, "z")]


def _version_three_database(url: str) -> None:
    """A database as schema version 3 left it: `requests` without the `user` column, one request served."""
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.create_all(conn, tables=[t for t in db.metadata.sorted_tables if t is not db.requests])
        conn.execute(text("CREATE TABLE requests (id VARCHAR(100) PRIMARY KEY, model VARCHAR(100) NOT NULL, "
                          "created_at FLOAT NOT NULL, latency_ms FLOAT NOT NULL, completion_tokens INTEGER NOT NULL, "
                          "ok BOOLEAN NOT NULL, error TEXT NOT NULL)"))
        conn.execute(text("INSERT INTO requests VALUES ('old', 'chat-v1.0', 1.0, 2.0, 3, 1, '')"))
        conn.execute(db.schema_version.insert().values(version=3))
    engine.dispose()


def test_migration_to_v4_records_no_user_on_earlier_requests(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v3.db'}"
    _version_three_database(url)
    engine = db.connect(url)
    try:
        assert "user" in {c["name"] for c in inspect(engine).get_columns("requests")}
        with engine.begin() as conn:
            assert conn.execute(select(db.schema_version.c.version)).scalar_one() == db.SCHEMA_VERSION == 5
            assert conn.execute(select(db.requests.c.user).where(db.requests.c.id == "old")).scalar_one() == ""
            conn.execute(db.requests.insert().values(id="new", model="chat-v1.0", created_at=2.0, latency_ms=1.0,
                                                     ok=True, user="alice"))
            served = dict(conn.execute(select(db.requests.c.id, db.requests.c.user)).all())
    finally:
        engine.dispose()
    assert served == {"old": "", "new": "alice"}


def test_the_migration_quotes_user_for_postgres() -> None:
    sql = db.add_column_sql(PGDialect(), db.requests.c.user, "''")
    assert sql == "ALTER TABLE requests ADD COLUMN \"user\" VARCHAR(200) NOT NULL DEFAULT ''"
