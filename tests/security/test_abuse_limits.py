"""Abuse limits: one thumb per (completion, user), only servable versions by name, a bounded and cached
leaderboard, a locked database answered 503, unhandled errors as JSON 500, garbled Authorization bytes 401."""

import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from fakes import Echo
from llmops import db
from llmops.models import registry
from llmops.serve import feedback as feedback_module
from llmops.serve import leaderboard as leaderboard_module
from llmops.serve.arena import insert_battle, new_battle
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.anyio
VERSIONS = ("chat-v1.0", "chat-v2.0", "chat-v3.0", "chat-v4.0", "chat-v5.0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _versions(workspace: Workspace) -> None:
    """v1 production, v2 registered, v3 archived, v4 rejected, v5 archived but the `previous` alias."""
    for _ in VERSIONS:
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    registry.set_alias(workspace, "previous", "chat-v5.0")
    for name, status in (("chat-v3.0", "archived"), ("chat-v4.0", "rejected"), ("chat-v5.0", "archived")):
        registry.set_status(workspace, name, status)


def _app(workspace: Workspace) -> FastAPI:
    return create_app(workspace, backends={name: Echo() for name in VERSIONS})


async def _client(app: FastAPI, raise_app_exceptions: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://g") as http:
        yield http


@pytest.fixture
async def client(workspace: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    _versions(workspace)
    async for http in _client(_app(workspace)):
        yield http


def _chat(model: str = "production") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def _thumbs(workspace: Workspace) -> list[tuple[str, str, int, str]]:
    table = db.feedback
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(table.c.completion_id, table.c.user, table.c.score, table.c.comment)
                            .order_by(table.c.user))
        return [(c, u, s, m) for c, u, s, m in rows]


async def test_feedback_flood_keeps_one_thumb_per_user(client: httpx.AsyncClient, workspace: Workspace) -> None:
    completion = (await client.post("/v1/chat/completions", json={**_chat(), "user": "eve"})).json()["id"]
    for i in range(10):
        body = {"completion_id": completion, "score": "down" if i < 9 else "up", "comment": f"#{i}", "user": "eve"}
        assert (await client.post("/v1/feedback", json=body)).status_code == 200
    assert _thumbs(workspace) == [(completion, "eve", 1, "#9")]
    bob = {"completion_id": completion, "score": -1, "user": "bob"}
    assert (await client.post("/v1/feedback", json=bob)).status_code == 403
    assert _thumbs(workspace) == [(completion, "eve", 1, "#9")]
    metrics = (await client.get("/v1/metrics")).json()["models"]
    assert next(m for m in metrics if m["model"] == "chat-v1.0")["feedback_score"] == 1.0


@pytest.mark.parametrize("upsert", [True, False], ids=["on-conflict", "delete-insert"])
def test_store_thumb_replaces_the_users_earlier_thumb(workspace: Workspace, monkeypatch: pytest.MonkeyPatch,
                                                      upsert: bool) -> None:
    if not upsert:  # a database without INSERT … ON CONFLICT
        monkeypatch.setattr(feedback_module, "_UPSERT_INSERTS", {})
    with workspace.engine.begin() as conn:
        conn.execute(db.requests.insert().values(id="c1", model="chat-v1.0", created_at=1.0, latency_ms=1.0, ok=True,
                                                 user="eve"))
    for score, comment in (("up", "a"), ("down", "b"), (-1, "c")):
        thumb = feedback_module.new_thumb(workspace, "c1", score, comment, "eve")
        with workspace.engine.begin() as conn:
            feedback_module.store_thumb(conn, thumb)
            feedback_module.store_thumb(conn, replace(thumb, score=1, comment="same transaction"))
    assert _thumbs(workspace) == [("c1", "eve", 1, "same transaction")]
    with pytest.raises(feedback_module.UnknownCompletion, match="'c2'"):
        feedback_module.new_thumb(workspace, "c2", "up")


def _version_one_database(url: str) -> None:
    """A database as schema version 1 left it: no unique (completion, user) index, duplicate thumbs."""
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.create_all(conn)
        conn.execute(text("DROP INDEX uq_feedback_completion_user"))
        conn.execute(db.schema_version.insert().values(version=1))
        for completion, user, score, comment in [("c1", "alice", 1, "first"), ("c1", "alice", -1, "second"),
                                                 ("c1", "bob", 1, "bob"), ("c2", "alice", -1, "other"),
                                                 ("c1", "alice", 1, "last"), ("c1", "", -1, "anon"),
                                                 ("c1", "", 1, "anon last")]:
            conn.execute(db.feedback.insert().values(completion_id=completion, model="chat-v1.0", score=score,
                                                     comment=comment, user=user, created_at=1.0))
    engine.dispose()


def test_migration_to_v2_keeps_the_latest_thumb_per_user(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    _version_one_database(url)
    engine = db.connect(url)
    table = db.feedback
    with engine.connect() as conn:
        assert conn.execute(select(db.schema_version.c.version)).scalar_one() == db.SCHEMA_VERSION
        rows = conn.execute(select(table.c.completion_id, table.c.user, table.c.comment)).all()
    assert sorted(map(tuple, rows)) == [("c1", "", "anon last"), ("c1", "alice", "last"), ("c1", "bob", "bob"),
                                        ("c2", "alice", "other")]
    unique = [i["column_names"] for i in inspect(engine).get_indexes("feedback") if i["unique"]]
    assert unique == [["completion_id", "user"]]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(table.insert().values(completion_id="c1", model="m", score=1, user="bob", created_at=2.0))
    engine.dispose()
    again = db.connect(url)  # already migrated: nothing runs twice
    with again.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 4
    again.dispose()


def test_registry_servable_rule(workspace: Workspace) -> None:
    _versions(workspace)
    servable = {v.name for v in registry.list_versions(workspace) if registry.servable(workspace, v)}
    assert servable == {"chat-v1.0", "chat-v2.0", "chat-v5.0"}


async def test_unservable_versions_need_the_admin_token(client: httpx.AsyncClient, workspace: Workspace) -> None:
    for name in ("chat-v2.0", "chat-v5.0", "previous"):
        assert (await client.post("/v1/chat/completions", json=_chat(name))).status_code == 200, name
    admin = {"Authorization": f"Bearer {workspace.admin_token()}"}
    for name in ("chat-v3.0", "chat-v4.0"):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.post("/v1/chat/completions", json=_chat(name), headers=headers)
            assert refused.status_code == 404, name
            message = refused.json()["error"]["message"]
            assert name in message and "archived" not in message and "rejected" not in message
        served = await client.post("/v1/chat/completions", json=_chat(name), headers=admin)
        assert served.status_code == 200 and served.json()["model"] == name
    listed = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
    assert "chat-v3.0" not in listed and "chat-v4.0" not in listed and "chat-v5.0" in listed


def _voted_battles(workspace: Workspace, votes: list[str]) -> None:
    with workspace.engine.begin() as conn:
        for i, vote in enumerate(votes):
            battle = new_battle("q", "u", (VERSIONS[i % 3], VERSIONS[(i + 1) % 3]), ("x", "y"), {})
            insert_battle(conn, battle.__class__(**{**battle.to_dict(), "vote": vote}))


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    original: Callable[..., Any] = getattr(leaderboard_module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(leaderboard_module, name, counted)
    return calls


async def test_leaderboard_rounds_are_capped_and_results_cached(workspace: Workspace,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _versions(workspace)
    _voted_battles(workspace, ["a", "b", "tie", "a", "both_bad", "a"] * 20)
    capped = open_workspace(workspace.root, ["serve.leaderboard_max_rounds=300"])
    fits = _counting(monkeypatch, "rate")
    async for client in _client(_app(capped)):
        for rounds in (301, 5000, 0):
            refused = await client.get("/v1/arena/leaderboard", params={"rounds": rounds})
            assert refused.status_code == 400 and "rounds" in refused.json()["error"]["message"]
        assert fits == []
        first = (await client.get("/v1/arena/leaderboard", params={"rounds": 300})).json()
        assert (await client.get("/v1/arena/leaderboard", params={"rounds": 300})).json() == first
        assert len(fits) == 1
        await client.get("/v1/arena/leaderboard", params={"rounds": 50})
        assert len(fits) == 2
        _voted_battles(capped, ["a"])
        assert (await client.get("/v1/arena/leaderboard", params={"rounds": 300})).json() != first
        assert len(fits) == 3


def test_bootstrap_rounds_are_fitted_together(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost of `rounds` resamples is two fits (the estimate and all resamples at once), not rounds + 1."""
    _voted_battles(workspace, ["a", "b", "tie", "a", "both_bad"] * 100)
    fits = _counting(monkeypatch, "fit_strengths")
    board = leaderboard_module.leaderboard(workspace, rounds=1000)
    assert len(fits) == 2 and len(board) == 3
    assert all(r.ci_low <= r.rating <= r.ci_high for r in board)


async def test_locked_database_is_503_with_retry_after(workspace: Workspace) -> None:
    _versions(workspace)
    impatient = open_workspace(workspace.root, ["database_busy_timeout_s=0.2"])
    async for client in _client(_app(impatient)):
        completion = (await client.post("/v1/chat/completions", json=_chat())).json()["id"]
        holder = sqlite3.connect(impatient.root / "llmops.db", timeout=0.2)
        try:
            holder.execute("BEGIN IMMEDIATE")
            for path, body in (("/v1/feedback", {"completion_id": completion, "score": "up"}),
                               ("/v1/chat/completions", _chat())):
                busy = await client.post(path, json=body)
                assert busy.status_code == 503, path
                assert busy.headers["retry-after"].isdigit()
                assert busy.json()["error"]["code"] == 503
                assert busy.json()["error"]["type"] == "server_error"
        finally:
            holder.rollback()
            holder.close()
        assert (await client.post("/v1/feedback", json={"completion_id": completion, "score": "up"})).status_code == 200


async def test_unhandled_errors_are_json_500_without_traceback(workspace: Workspace) -> None:
    _versions(workspace)
    app = _app(workspace)

    def boom() -> None:
        raise RuntimeError("secret detail /etc/shadow")

    def broken_database() -> None:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))

    app.add_api_route("/boom", boom)
    app.add_api_route("/broken-database", broken_database)
    async for client in _client(app, raise_app_exceptions=False):
        for path in ("/boom", "/broken-database"):
            response = await client.get(path)
            assert response.status_code == 500, path
            assert response.headers["content-type"] == "application/json"
            error = response.json()["error"]
            assert error["code"] == 500 and error["type"] == "server_error"
            assert "secret" not in response.text and "Traceback" not in response.text and "disk" not in response.text
    async for client in _client(app):  # the error still reaches the server, which logs it
        with pytest.raises(RuntimeError, match="secret detail"):
            await client.get("/boom")


@pytest.mark.parametrize("header", [b"Bearer \xff\xfe", "Bearer tökén".encode(), b"Bearer \xc3\x28", b"\xff\xfe",
                                    b"Basic \xff", b"Basic /zr+", b"Basic YWRtaW46dMO2a8Opbg=="])
async def test_non_ascii_authorization_is_401(client: httpx.AsyncClient, header: bytes) -> None:
    refused = await client.post("/v1/admin/rollback", headers={b"Authorization": header})
    assert refused.status_code == 401
    assert "token" in refused.json()["error"]["message"]
    served = await client.post("/v1/chat/completions", json=_chat(), headers={b"Authorization": header})
    assert served.status_code == 200
    hidden = await client.post("/v1/chat/completions", json=_chat("chat-v3.0"), headers={b"Authorization": header})
    assert hidden.status_code == 404


async def test_admin_token_with_a_non_ascii_suffix_is_401(client: httpx.AsyncClient, workspace: Workspace) -> None:
    token = workspace.admin_token().encode()
    for header in (b"Bearer " + token + b"\xff", b"Bearer " + token + "é".encode()):
        assert (await client.post("/v1/admin/rollback", headers={b"Authorization": header})).status_code == 401
    granted = await client.post("/v1/admin/rollback", headers={b"Authorization": b"Bearer " + token})
    assert granted.status_code == 200
