"""Every vote and thumb as a KTO example: the gateway records what a thumb judges, the export's hygiene and
registration, and the v4 → v5 migration."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, select, text

from fakes import Echo
from llmops import db
from llmops.data.kto import Signal, export_kto, kto_examples, kto_stats
from llmops.data.preferences import PreferenceCollector
from llmops.data.registry import read_dataset_info, validate_registered
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace, open_workspace

DAY = 86400.0


def _signal(kind: str, answers: list[tuple[str, bool]], user: str = "u", at: float = 10.0, prompt: str = "q?",
            source: str = "vote") -> Signal:
    return Signal(source, f"{source}-{kind}-{at}", kind, user, at, [{"role": "user", "content": prompt}],
                  [(answer, tag, "m") for answer, tag in answers])


def test_each_kind_of_signal_and_each_reason_to_leave_one_out() -> None:
    signals = [
        _signal("a", [("good", True), ("bad", False)]),
        _signal("both_bad", [("bad 1", False), ("bad 2", False)], prompt="q2?"),
        _signal("tie", []),
        _signal("b", [("same", True), (" same ", False)], prompt="q3?"),  # identical answers
        _signal("a", [("", True), ("bad", False)], prompt="q4?"),  # empty
        _signal("a", [("good", True), ("bad", False)], user="v"),  # the same examples again
        _signal("up", [("good", True)], source="thumb"),  # duplicate of the first vote's desirable answer
        _signal("down", [("nice", False)], source="thumb"),
        _signal("a", [("x", True), ("y", False)], prompt="q5?", at=20.0),  # u's 4th signal of the day: over the cap
        _signal("a", [("x", True), ("y", False)], prompt="q5?", at=20.0 + DAY),  # the next day
    ]
    stats, examples = kto_examples(signals, daily_cap=3)
    assert (stats.votes, stats.thumbs, stats.used_signals) == (8, 2, 4)
    assert (stats.desirable, stats.undesirable, stats.examples) == (2, 5, 7)
    assert (stats.ties, stats.identical, stats.empty, stats.duplicates, stats.capped) == (1, 1, 1, 3, 1)
    first, second = examples[0], examples[1]
    assert first["messages"] == [{"role": "user", "content": "q?"}, {"role": "assistant", "content": "good"}]
    assert first["kto_tag"] is True and second["kto_tag"] is False
    assert second["messages"][:-1] == first["messages"][:-1]  # one prompt, both answers
    assert first["metadata"] == {"source": "vote", "source_id": "vote-a-10.0", "kind": "a", "user": "u",
                                 "model": "m", "created_at": "1970-01-01T00:00:10+00:00"}
    assert [e["kto_tag"] for e in examples[2:4]] == [False, False]  # both_bad: two undesirable answers
    malformed = Signal("thumb", "t", "up", "", 1.0, [{"role": "assistant", "content": "hi"}], [("x", True, "m")])
    assert kto_examples([malformed], 0)[0].malformed == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(workspace: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                              path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    app = create_app(open_workspace(workspace.root), backends={"chat-v1.0": Echo()})
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://g") as http:
        yield http


@pytest.mark.anyio
async def test_thumbs_on_served_completions_become_examples(client: httpx.AsyncClient, workspace: Workspace) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Return period?"}]
    served = (await client.post("/v1/chat/completions", json={"model": "production", "messages": messages})).json()
    streamed = await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi there"}],
                                                               "stream": True})
    stream_id = json.loads(streamed.text.split("data: ", 2)[1].split("\n", 1)[0])["id"]
    for completion, score in ((served["id"], "up"), (stream_id, "down")):
        thumb = await client.post("/v1/feedback", json={"completion_id": completion, "score": score})
        assert thumb.status_code == 200
    PreferenceCollector(workspace).collect_preference("Price?", "¥300, thank you!", "¥300", "a")
    report = export_kto(workspace)
    assert (report.stats.votes, report.stats.thumbs, report.stats.desirable, report.stats.undesirable) == (1, 2, 2, 2)
    examples = [json.loads(line) for line in report.latest_path.read_text(encoding="utf-8").splitlines()]
    thumbs = {e["metadata"]["source_id"]: e for e in examples if e["metadata"]["source"] == "thumb"}
    answer = served["choices"][0]["message"]["content"]
    assert thumbs[served["id"]]["messages"] == [*messages, {"role": "assistant", "content": answer}]
    assert thumbs[served["id"]]["kto_tag"] is True and thumbs[served["id"]]["metadata"]["model"] == "chat-v1.0"
    assert thumbs[stream_id]["kto_tag"] is False and thumbs[stream_id]["messages"][-1]["content"].startswith("chat-")
    entry = read_dataset_info(workspace)["kto"]
    assert entry == {"file_name": "kto/kto.jsonl", "formatting": "sharegpt", "ranking": False,
                     "columns": {"messages": "messages", "kto_tag": "kto_tag"},
                     "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                              "assistant_tag": "assistant", "system_tag": "system"}}
    assert report.path.stem in read_dataset_info(workspace) and validate_registered(workspace, "kto").ok
    assert kto_stats(workspace, since=report.datasets[0].created_at).signals == 0


def test_nothing_to_export_names_the_counts(workspace: Workspace) -> None:
    PreferenceCollector(workspace).collect_preference("q", "same", "same", "tie")
    with pytest.raises(LLMOpsError, match=r"no KTO examples to export from 1 votes and 0 thumbs; left out: 1 ties, "):
        export_kto(workspace)
    assert "kto" not in read_dataset_info(workspace)


def test_migration_to_v5_keeps_earlier_requests_without_text(workspace: Workspace, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v4.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        db.metadata.create_all(conn, tables=[t for t in db.metadata.sorted_tables if t is not db.requests])
        conn.execute(text("CREATE TABLE requests (id VARCHAR(100) PRIMARY KEY, model VARCHAR(100) NOT NULL, "
                          "created_at FLOAT NOT NULL, latency_ms FLOAT NOT NULL, completion_tokens INTEGER NOT NULL, "
                          "ok BOOLEAN NOT NULL, error TEXT NOT NULL, user VARCHAR(200) NOT NULL DEFAULT '')"))
        conn.execute(text("INSERT INTO requests VALUES ('old', 'chat-v1.0', 1.0, 2.0, 3, 1, '', 'alice')"))
        conn.execute(db.feedback.insert().values(completion_id="old", model="chat-v1.0", score=1, user="alice",
                                                 created_at=2.0))
        conn.execute(db.schema_version.insert().values(version=4))
    engine.dispose()
    migrated = db.connect(url)
    try:
        assert {"messages", "answer"} <= {c["name"] for c in inspect(migrated).get_columns("requests")}
        with migrated.connect() as conn:
            assert conn.execute(select(db.schema_version.c.version)).scalar_one() == db.SCHEMA_VERSION == 5
            row = conn.execute(select(db.requests.c.messages, db.requests.c.answer)).one()
        assert (row.messages, row.answer) == ([], "")
    finally:
        migrated.dispose()
    old = open_workspace(workspace.root, [f"database_url={url}"])
    assert kto_stats(old).empty == 1  # a thumb on a request from before v5: no text to learn from


def test_the_cli_exports_kto_examples(workspace: Workspace) -> None:
    from typer.testing import CliRunner

    from llmops.cli import app

    PreferenceCollector(workspace).collect_preference("q", "yes", "no", "b")
    result = CliRunner().invoke(app, ["data", "prefs", "export-kto", "-w", str(workspace.root)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "exported 2 KTO examples" in result.output and "kto.jsonl" in result.output
    rows = [json.loads(line) for line in (workspace.data_dir / "kto/kto.jsonl").read_text().splitlines()]
    assert [(r["messages"][-1]["content"], r["kto_tag"]) for r in rows] == [("no", True), ("yes", False)]
