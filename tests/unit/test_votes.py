"""One vote vocabulary: parsing every spelling, the v2 → v3 migration, and what HTTP and the spec's API store."""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from fakes import Echo
from llmops import db
from llmops.data.preferences import PreferenceCollector, export_preferences
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.votes import Vote, parse_vote
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.store

SPELLINGS = {
    Vote.A: ["a", "A", " A ", Vote.A],
    Vote.B: ["b", "B", "b\n", Vote.B],
    Vote.TIE: ["tie", "Tie", "TIE"],
    Vote.BOTH_BAD: ["both_bad", "BOTH_BAD", "Both_Bad"],
}


@pytest.mark.parametrize(("spelling", "vote"), [(s, v) for v, spellings in SPELLINGS.items() for s in spellings])
def test_every_accepted_spelling_is_read(spelling: str, vote: Vote) -> None:
    assert parse_vote(spelling) is vote


@pytest.mark.parametrize("value", ["c", "", "both bad", "bothbad", "AB", "👍", None, 1, ["a"]])
def test_anything_else_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(LLMOpsError, match=r"^battle\.choice .*: expected one of a, b, tie, both_bad"):
        parse_vote(value, "battle.choice")


def test_scores_and_pairs_follow_the_vote() -> None:
    assert [v.score_a for v in Vote] == [1.0, 0.0, 0.5, 0.5]
    assert [v.decisive for v in Vote] == [True, True, False, False]
    assert Vote.A.chosen_rejected("x", "y") == ("x", "y")
    assert Vote.B.chosen_rejected("x", "y") == ("y", "x")
    assert Vote.TIE.chosen_rejected("x", "y") is None and Vote.BOTH_BAD.chosen_rejected("x", "y") is None


def _version_two_database(url: str) -> None:
    """A database as schema version 2 left it: preferences stored as the spec's A/B."""
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.create_all(conn)
        conn.execute(db.schema_version.insert().values(version=2))
        for key, choice in [("v1", "A"), ("v2", "B"), ("v3", "tie"), ("v4", "both_bad"), ("v5", "A")]:
            conn.execute(db.votes.insert().values(id=key, created_at=1.0, user="u", question=f"q {key}",
                                                  response_a="x", response_b="y", choice=choice, meta={}))
        for key, vote in [("b1", "a"), ("b2", "A"), ("b3", "B"), ("b4", None)]:
            conn.execute(db.battles.insert().values(id=key, created_at=1.0, prompt="q", model_a="m1", model_b="m2",
                                                    response_a="x", response_b="y", sampling={}, vote=vote))
    engine.dispose()


def test_migration_to_v3_stores_one_vocabulary(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'v2.db'}"
    _version_two_database(url)
    engine = db.connect(url)
    with engine.connect() as conn:
        assert conn.execute(select(db.schema_version.c.version)).scalar_one() == db.SCHEMA_VERSION
        choices = dict(conn.execute(select(db.votes.c.id, db.votes.c.choice)).all())
        battles = dict(conn.execute(select(db.battles.c.id, db.battles.c.vote)).all())
    engine.dispose()
    assert choices == {"v1": "a", "v2": "b", "v3": "tie", "v4": "both_bad", "v5": "a"}
    assert battles == {"b1": "a", "b2": "a", "b3": "b", "b4": None}


@pytest.fixture
async def client(workspace: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    registry.set_alias(workspace, "candidate", "chat-v2.0")
    app = create_app(open_workspace(workspace.root, ["auth.open_arena=true"]),
                     backends={"chat-v1.0": Echo(), "chat-v2.0": Echo()})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_http_and_the_spec_api_store_the_same_vocabulary(client: httpx.AsyncClient,
                                                               workspace: Workspace) -> None:
    battle = (await client.post("/v1/arena/battles", json={"prompt": "which cable?", "user": "u1"})).json()
    voted = await client.post(f"/v1/arena/battles/{battle['id']}/vote", json={"vote": "b"})
    assert voted.status_code == 200 and voted.json()["vote"] == "b"
    spec_id = PreferenceCollector(workspace).collect_preference(
        question="q", response_a="good", response_b="bad", choice="A",
        metadata={"timestamp": time.time(), "model_a": "v1.0", "model_b": "v1.1"})
    with workspace.engine.connect() as conn:
        choices = dict(conn.execute(select(db.votes.c.id, db.votes.c.choice)).all())
        marks = conn.execute(select(db.battles.c.vote)).scalars().all()
    assert choices == {battle["id"]: "b", spec_id: "a"}
    assert marks == ["b"]
    pairs = [json.loads(line) for line in export_preferences(workspace).latest_path.read_text().splitlines()]
    chosen = {p["metadata"]["vote_id"]: (p["chosen"]["content"], p["rejected"]["content"]) for p in pairs}
    assert chosen == {battle["id"]: (battle["response_b"], battle["response_a"]), spec_id: ("good", "bad")}
