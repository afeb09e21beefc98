"""The one promote and the one rollback (models/rollouts.py): one transaction with its event, the same state and
event from the CLI, the admin API (and the UI through it) and the loop, and no rollout finished twice."""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

import pg
from llmops.cli import app as cli
from llmops.errors import LLMOpsError
from llmops.loop import rollout
from llmops.models import registry, rollouts
from llmops.serve.gateway import create_app
from llmops.ui.gateway_client import GatewayClient
from llmops.workspace import Workspace, init_workspace, open_workspace

pytestmark = pytest.mark.store

STAGES = "loop.rollout_stages=[0.05, 0.5]"


@dataclass
class Metrics:
    requests: int = 0
    error_rate: float = 0.0
    latency_p99_ms: float = 100.0
    feedback_score: float | None = None


def two_versions(root: Path, store_url: str) -> Workspace:
    """chat-v1.0 in production, chat-v1.1 registered; two stages, judged after 10 requests, no minimum duration."""
    workspace = init_workspace(root, overrides=pg.overrides(store_url))
    for stage, parent in (("sft", None), ("dpo", "chat-v1.0")):
        registry.register_version(workspace, kind="chat", stage=stage, parent=parent, base_model="b", path="p",
                                  merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    return open_workspace(root, [STAGES, "loop.stage_min_requests=10", "loop.stage_min_minutes=0",
                                 "loop.guardrail_min_requests=10"])


@pytest.fixture
def ws(tmp_path: Path, store_url: str) -> Workspace:
    return two_versions(tmp_path / "ws", store_url)


def state(ws: Workspace) -> dict[str, Any]:
    """Everything a promotion or rollback may change: aliases, statuses, the rollout rows and the events."""
    latest = rollouts.latest_rollout(ws)
    return {"aliases": registry.aliases(ws), "statuses": {v.name: v.status for v in registry.list_versions(ws)},
            "rollout": None if latest is None else (latest.status, latest.traffic, latest.stage_index),
            "events": [(e.candidate, e.event, e.traffic) for e in rollouts.history(ws)]}


def admin(ws: Workspace, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    with TestClient(create_app(ws)) as client:
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {ws.admin_token()}"})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def command(ws: Workspace, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def failing_events(ws: Workspace) -> Iterator[None]:
    """Every insert into rollout_events fails inside the database, after the other writes of its transaction."""
    postgres = ws.engine.dialect.name == "postgresql"
    with ws.engine.begin() as conn:
        if postgres:
            conn.execute(text("CREATE FUNCTION no_events() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'event store down'; END $$"))
            conn.execute(text("CREATE TRIGGER no_events BEFORE INSERT ON rollout_events "
                              "FOR EACH ROW EXECUTE FUNCTION no_events()"))
        else:
            conn.execute(text("CREATE TRIGGER no_events BEFORE INSERT ON rollout_events "
                              "BEGIN SELECT RAISE(ABORT, 'event store down'); END"))
    yield
    with ws.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER no_events ON rollout_events" if postgres else "DROP TRIGGER no_events"))


@pytest.mark.parametrize("change", [
    lambda ws: rollouts.promote(ws, by="cli"),
    lambda ws: rollouts.rollback(ws, by="cli"),
], ids=["promote", "rollback"])
def test_a_failed_event_leaves_the_running_rollout_as_it_was(ws: Workspace, change: Callable[[Workspace], Any],
                                                             request: pytest.FixtureRequest) -> None:
    rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=1.0)
    before = state(ws)
    request.getfixturevalue("failing_events")
    with pytest.raises(Exception, match="event store down"):
        change(ws)
    assert state(ws) == before
    assert before["aliases"] == {"production": "chat-v1.0", "candidate": "chat-v1.1"}
    assert before["rollout"] == ("running", 0.05, 0)


@pytest.mark.parametrize("change", [
    lambda ws: rollouts.promote(ws, "chat-v1.1", by="cli"),
    lambda ws: rollouts.rollback(ws, by="cli"),
], ids=["promote", "rollback"])
def test_a_failed_event_leaves_the_aliases_as_they_were(ws: Workspace, change: Callable[[Workspace], Any],
                                                        request: pytest.FixtureRequest) -> None:
    registry.set_alias(ws, "previous", "chat-v1.1")
    before = state(ws)
    request.getfixturevalue("failing_events")
    with pytest.raises(Exception, match="event store down"):
        change(ws)
    assert state(ws) == before == {**before, "aliases": {"production": "chat-v1.0", "previous": "chat-v1.1"}}


def test_admin_rollback_records_its_event_like_the_cli(ws: Workspace) -> None:
    rollouts.promote(ws, "chat-v1.1", by="cli")
    assert admin(ws, "/v1/admin/rollback") == {"production": "chat-v1.0"}
    by_admin = rollouts.history(ws)[-1]
    command(ws, "models", "promote", "chat-v1.1")
    assert "production → chat-v1.0" in command(ws, "models", "rollback")
    by_cli = rollouts.history(ws)[-1]
    for event, by in ((by_admin, "admin"), (by_cli, "cli")):
        assert (event.candidate, event.event, event.traffic) == ("chat-v1.1", "reverted", 0.0)
        assert event.evidence == {"by": by, "reason": "manual", "production": "chat-v1.0", "demoted": "chat-v1.1"}


def test_the_ui_acts_through_the_admin_api_as_ui(ws: Workspace) -> None:
    rollouts.start_rollout(ws, "chat-v1.1", by="cli")
    done = asyncio.run(GatewayClient(create_app(ws)).rollback(ws.admin_token()))
    assert done == {"rolled_back": "chat-v1.1", "production": "chat-v1.0"}
    assert rollouts.history(ws)[-1].evidence["by"] == "ui"


def _loop_step(ws: Workspace, candidate: Metrics) -> None:
    step = rollout.step_rollout(ws, lambda _ws, name, _since: candidate if name == "chat-v1.1" else Metrics(100))
    assert step is not None and step.action in (rollouts.PROMOTED, rollouts.ROLLED_BACK)


PROMOTIONS: dict[str, Callable[[Workspace], Any]] = {
    "cli": lambda ws: command(ws, "rollout", "promote"),
    "admin": lambda ws: admin(ws, "/v1/admin/promote", {}),
    "loop": lambda ws: _loop_step(ws, Metrics(requests=10)),
}
ROLLBACKS: dict[str, Callable[[Workspace], Any]] = {
    "cli": lambda ws: command(ws, "rollout", "rollback"),
    "admin": lambda ws: admin(ws, "/v1/admin/rollback"),
    "loop": lambda ws: _loop_step(ws, Metrics(requests=10, error_rate=0.5)),
}


@pytest.mark.parametrize("actions", [PROMOTIONS, ROLLBACKS], ids=["promote", "rollback"])
def test_cli_admin_and_loop_end_a_rollout_the_same_way(tmp_path: Path, store_url: str,
                                                       actions: dict[str, Callable[[Workspace], Any]]) -> None:
    outcomes = {}
    for by, act in actions.items():
        with nullcontext("") if not store_url else pg.fresh_database() as own_store:
            outcomes[by] = _end_a_rollout(two_versions(tmp_path / by, own_store), by, act)
    assert outcomes["cli"] == outcomes["admin"] == outcomes["loop"]
    assert outcomes["cli"]["events"][-1][1] in ("promoted", "rolled_back")


def _end_a_rollout(ws: Workspace, by: str, act: Callable[[Workspace], Any]) -> dict[str, Any]:
    """`act` ends a rollout at its last stage; the state it leaves and the evidence that must not depend on `by`."""
    started = rollouts.start_rollout(ws, "chat-v1.1", by="cli")
    rollouts.advance(ws, started, 0.5, {}, by="loop")  # the last stage, where the loop ends a rollout
    act(ws)
    event = rollouts.history(ws)[-1]
    assert event.evidence["by"] == by
    same = {k: v for k, v in event.evidence.items() if k in ("previous", "stage", "stage_traffic", "demoted")}
    return {**state(ws), "evidence": same}


def test_promote_ends_the_rollout_and_moves_production(ws: Workspace) -> None:
    rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=1.0)
    done = rollouts.promote(ws, "candidate", by="admin", reason="looks good", now=2.0)
    assert (done.production, done.displaced) == ("chat-v1.1", "chat-v1.0")
    assert done.rollout is not None and (done.rollout.status, done.rollout.traffic) == ("promoted", 1.0)
    assert state(ws)["aliases"] == {"production": "chat-v1.1", "previous": "chat-v1.0"}
    assert state(ws)["statuses"] == {"chat-v1.0": "archived", "chat-v1.1": "production"}
    event = rollouts.history(ws)[-1]
    assert event.evidence == {"previous": "chat-v1.0", "by": "admin", "reason": "looks good"}


def test_promoting_another_version_during_a_rollout_is_refused(ws: Workspace) -> None:
    registry.register_version(ws, kind="chat", stage="sft", parent=None, base_model="b", path="p", merged=True)
    rollouts.start_rollout(ws, "chat-v1.1", by="cli")
    before = state(ws)
    with pytest.raises(LLMOpsError, match=r"chat-v1\.1 is rolling out"):
        rollouts.promote(ws, "chat-v2.0", by="cli")
    assert state(ws) == before


def test_a_finished_rollout_cannot_be_finished_twice(ws: Workspace) -> None:
    read = rollouts.start_rollout(ws, "chat-v1.1", by="cli")
    rollouts.rollback(ws, by="cli", reason="operator", expected=read)
    after = state(ws)
    for again in (lambda: rollouts.rollback(ws, by="loop", expected=read),
                  lambda: rollouts.promote(ws, by="loop", expected=read),
                  lambda: rollouts.advance(ws, read, 0.5, {}, by="loop"),
                  lambda: rollouts.set_traffic(ws, 0.5, by="admin")):
        with pytest.raises(LLMOpsError, match=r"no longer running|none is running"):
            again()
    assert state(ws) == after
    assert [e.event for e in rollouts.history(ws)] == ["started", "rolled_back"]


def test_a_stale_stage_is_not_advanced_twice(ws: Workspace) -> None:
    read = rollouts.start_rollout(ws, "chat-v1.1", by="loop")
    rollouts.advance(ws, read, 0.5, {}, by="loop")
    with pytest.raises(LLMOpsError, match="no longer running at stage 1"):
        rollouts.advance(ws, read, 0.5, {}, by="loop")
    assert [e.event for e in rollouts.history(ws)] == ["started", "advanced"]


def test_set_traffic_changes_the_share_with_its_event(ws: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="none is running"):
        rollouts.set_traffic(ws, 0.5, by="admin")
    rollouts.start_rollout(ws, "chat-v1.1", by="cli")
    with pytest.raises(LLMOpsError, match="between 0 and 1"):
        rollouts.set_traffic(ws, 1.5, by="cli")
    assert admin(ws, "/v1/admin/traffic", {"traffic": 0.3}) == {"candidate": "chat-v1.1", "traffic": 0.3}
    assert rollouts.current_rollout(ws).traffic == 0.3  # type: ignore[union-attr]
    event = rollouts.history(ws)[-1]
    assert (event.event, event.traffic, event.evidence) == ("traffic_set", 0.3, {"by": "admin", "reason": "manual"})


def test_unknown_actor_is_refused(ws: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="by='someone'"):
        rollouts.rollback(ws, by="someone")  # type: ignore[arg-type]
