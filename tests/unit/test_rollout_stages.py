"""Rollout stages carry their own minimums (spec 9.3.1); the old plain list of traffic shares still loads."""

from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.errors import LLMOpsError
from llmops.loop import rollout
from llmops.models import registry, rollouts
from llmops.settings import LoopSettings
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.store

HOUR = 3600.0
STAGES = ("loop.rollout_stages=[{traffic: 0.1, min_hours: 1, min_requests: 5}, "
          "{traffic: 0.5, min_hours: 2, min_requests: 50}, 1.0]")


@dataclass
class Metrics:
    requests: int = 0
    error_rate: float = 0.0
    latency_p99_ms: float = 100.0
    feedback_score: float | None = None


class Traffic:
    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, workspace: Workspace, model: str, since: float | None) -> Metrics:
        return Metrics(self.requests if model == "chat-v1.1" else 0)


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p1",
                              merged=True)
    registry.register_version(workspace, kind="chat", stage="dpo", parent="chat-v1.0", base_model="b",
                              path="p2", merged=False)
    registry.set_alias(workspace, "production", "chat-v1.0")
    return open_workspace(workspace.root, [STAGES, "loop.stage_min_requests=3", "loop.guardrail_min_requests=1000"])


def test_the_defaults_are_the_spec_durations() -> None:
    s = LoopSettings()
    assert [(st.traffic, st.min_hours) for st in s.rollout_stages] == [(0.05, 24), (0.2, 48), (0.5, 72), (1.0, 0)]
    assert s.stage(0).min_requests == s.stage_min_requests == 100


def test_the_old_list_form_loads_with_the_global_minimums(workspace: Workspace) -> None:
    path = workspace.root / "llmops.yaml"
    path.write_text(path.read_text() + "loop:\n  rollout_stages: [0.1, 1.0]\n  stage_min_requests: 7\n"
                    "  stage_min_minutes: 30\n")
    loop = open_workspace(workspace.root).settings.loop
    assert loop.traffic_shares == [0.1, 1.0]
    assert (loop.stage(0).min_hours, loop.stage(0).min_requests) == (0.5, 7)


def test_each_stage_holds_until_both_its_hours_and_its_requests(ws: Workspace) -> None:
    traffic = Traffic()
    rollouts.start_rollout(ws, "chat-v1.1", by="loop", now=0.0)

    def step(now: float) -> str:
        done = rollout.step_rollout(ws, traffic, now=now)
        assert done is not None
        return done.action

    traffic.requests = 5
    assert step(HOUR - 1) == "hold"
    traffic.requests = 4
    assert step(HOUR) == "hold"
    traffic.requests = 5
    assert step(HOUR) == "advanced"
    held = rollout.step_rollout(ws, traffic, now=4 * HOUR)
    assert held is not None and held.action == "hold" and held.rollout.traffic == 0.5
    assert held.evidence["stage_progress"] == {"hours": 3.0, "min_hours": 2.0, "requests": 5, "min_requests": 50}
    traffic.requests = 50
    assert step(4 * HOUR) == "advanced"
    traffic.requests = 2  # the last stage, a share alone: the global minimums (3 requests, 0 minutes)
    assert step(4 * HOUR) == "hold"
    traffic.requests = 3
    assert step(4 * HOUR) == "promoted"


def test_rollout_status_shows_the_stage_minimums(ws: Workspace) -> None:
    rollouts.start_rollout(ws, "chat-v1.1", by="cli")
    result = CliRunner().invoke(app, ["rollout", "status", "-w", str(ws.root), "--set", STAGES])
    assert result.exit_code == 0, result.output
    assert "stage minimums: 0.0 of 1 hours, 0 of 5 candidate requests" in result.output


@pytest.mark.parametrize("stages", ["[{traffic: 0}]", "[{traffic: 0.5, min_days: 1}]",
                                    "[{traffic: 0.5, min_hours: -1}]", "[1.5]", "[true]"])
def test_bad_stages_are_refused(workspace: Workspace, stages: str) -> None:
    with pytest.raises(LLMOpsError, match=r"loop\.rollout_stages"):
        open_workspace(workspace.root, [f"loop.rollout_stages={stages}"])
