from dataclasses import dataclass

import pytest

from llmops.errors import LLMOpsError
from llmops.loop import rollout
from llmops.models import registry, rollouts
from llmops.settings import LoopSettings
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.store


@dataclass
class Metrics:
    requests: int = 0
    error_rate: float = 0.0
    latency_p99_ms: float = 100.0
    feedback_score: float | None = None


class FakeTraffic:
    """Per-version metrics the test sets; remembers the `since` it was asked for."""

    def __init__(self) -> None:
        self.by_model: dict[str, Metrics] = {}
        self.since: list[float | None] = []

    def __call__(self, workspace: Workspace, model: str, since: float | None) -> Metrics:
        self.since.append(since)
        return self.by_model.get(model, Metrics())


def _register(workspace: Workspace) -> None:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p1",
                              merged=True)
    registry.register_version(workspace, kind="chat", stage="dpo", parent="chat-v1.0", base_model="b",
                              path="p2", merged=False)
    registry.set_alias(workspace, "production", "chat-v1.0")


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    _register(workspace)
    return open_workspace(workspace.root, ["loop.rollout_stages=[0.05, 0.2, 0.5, 1.0]", "loop.stage_min_requests=20",
                                            "loop.guardrail_min_requests=10"])


def test_guardrails_each_metric() -> None:
    s = LoopSettings()
    healthy = Metrics(requests=50, error_rate=0.01, latency_p99_ms=500, feedback_score=0.5)
    prod = Metrics(requests=500, error_rate=0.0, latency_p99_ms=400, feedback_score=0.5)
    assert rollout.check_guardrails(healthy, prod, s) == []
    assert [b.metric for b in rollout.check_guardrails(Metrics(50, 0.06, 500, 0.5), prod, s)] == ["error_rate"]
    assert rollout.check_guardrails(Metrics(50, 0.05, 500, 0.5), prod, s) == []
    assert [b.metric for b in rollout.check_guardrails(Metrics(50, 0.0, 2001, 0.5), prod, s)] == ["latency_p99_ms"]
    assert rollout.check_guardrails(Metrics(50, 0.0, 2000, 0.5), prod, s) == []
    # production: 75% thumbs up (score 0.5); the floor is 0.8 × 75% = 60% thumbs up, a score of 0.2
    dropped = rollout.check_guardrails(Metrics(50, 0.0, 100, 0.19), prod, s)
    assert [(b.metric, b.limit) for b in dropped] == [("feedback_score", pytest.approx(0.2))]
    assert rollout.check_guardrails(Metrics(50, 0.0, 100, 0.21), prod, s) == []
    assert rollout.feedback_floor(-0.5, 0.2) == pytest.approx(-0.6)
    assert rollout.feedback_floor(-1.0, 0.2) == pytest.approx(-1.0)
    assert rollout.feedback_floor(0.3, 1.0) == pytest.approx(-1.0)
    assert rollout.check_guardrails(Metrics(50, 0.0, 100, 0.1), Metrics(feedback_score=None), s) == []
    assert len(rollout.check_guardrails(Metrics(50, 0.5, 9000, -1.0), prod, s)) == 3


def test_guardrails_wait_for_enough_requests() -> None:
    s = LoopSettings(guardrail_min_requests=10)
    prod = Metrics(requests=100)
    assert rollout.check_guardrails(Metrics(9, 1.0, 9000), prod, s) == []
    assert rollout.check_guardrails(Metrics(10, 1.0, 100), prod, s)[0].metric == "error_rate"


def test_stage_complete_needs_requests_and_duration() -> None:
    s = LoopSettings(rollout_stages=[0.05, 1.0], stage_min_requests=100, stage_min_minutes=10)
    r = rollouts.Rollout("chat-v1.1", "chat-v1.0", 0, 0.05, "running", 0.0, 1000.0)
    assert not rollout.stage_complete(r, Metrics(requests=100), 1000.0 + 599, s)
    assert not rollout.stage_complete(r, Metrics(requests=99), 1000.0 + 600, s)
    assert rollout.stage_complete(r, Metrics(requests=100), 1000.0 + 600, s)


def test_start_sets_first_stage_and_candidate_alias(ws: Workspace) -> None:
    r = rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=100.0)
    assert (r.stage_index, r.traffic, r.production, r.status) == (0, 0.05, "chat-v1.0", "running")
    assert registry.aliases(ws) == {"production": "chat-v1.0", "candidate": "chat-v1.1"}
    assert rollouts.current_rollout(ws) == r
    assert [e.event for e in rollouts.history(ws)] == ["started"]
    with pytest.raises(LLMOpsError, match="still rolling out"):
        rollouts.start_rollout(ws, "chat-v1.1", by="cli")


def test_start_refuses_production_itself_and_missing_production(workspace: Workspace) -> None:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p",
                              merged=True)
    with pytest.raises(LLMOpsError, match="no `production` alias"):
        rollouts.start_rollout(workspace, "chat-v1.0", by="cli")
    registry.set_alias(workspace, "production", "chat-v1.0")
    with pytest.raises(LLMOpsError, match="already production"):
        rollouts.start_rollout(workspace, "chat-v1.0", by="cli")


def test_stages_advance_then_promote(ws: Workspace) -> None:
    traffic = FakeTraffic()
    rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=0.0)
    step = rollout.step_rollout(ws, traffic, now=10.0)
    assert step is not None and step.action == "hold" and step.rollout.traffic == 0.05
    traffic.by_model["chat-v1.1"] = Metrics(requests=20)
    shares = []
    for t, stage_start in ((20.0, 0.0), (30.0, 20.0), (40.0, 30.0)):
        step = rollout.step_rollout(ws, traffic, now=t)
        assert step is not None and step.action == "advanced"
        shares.append(step.rollout.traffic)
        assert traffic.since[-2:] == [stage_start, stage_start]
    assert shares == [0.2, 0.5, 1.0]
    step = rollout.step_rollout(ws, traffic, now=50.0)
    assert step is not None and step.action == "promoted"
    assert registry.aliases(ws) == {"production": "chat-v1.1", "previous": "chat-v1.0"}
    assert rollouts.current_rollout(ws) is None
    assert registry.get_version(ws, "chat-v1.1").status == "production"
    assert [e.event for e in rollouts.history(ws)] == ["started", "advanced", "advanced", "advanced", "promoted"]
    assert rollout.step_rollout(ws, traffic, now=60.0) is None


def test_breach_rolls_back_at_once_and_keeps_production(ws: Workspace) -> None:
    traffic = FakeTraffic()
    rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=0.0)
    traffic.by_model["chat-v1.1"] = Metrics(requests=12, error_rate=0.25, latency_p99_ms=300)
    traffic.by_model["chat-v1.0"] = Metrics(requests=230, error_rate=0.0, latency_p99_ms=280)
    step = rollout.step_rollout(ws, traffic, now=5.0)
    assert step is not None and step.action == "rolled_back"
    assert step.rollout.traffic == 0.0 and step.rollout.stage_index == 0
    assert registry.aliases(ws) == {"production": "chat-v1.0"}
    assert registry.get_version(ws, "chat-v1.1").status == "rejected"
    event = rollouts.history(ws)[-1]
    assert event.event == "rolled_back" and event.traffic == 0.0
    assert event.evidence["breaches"] == [{"metric": "error_rate", "value": 0.25, "limit": 0.05}]
    assert event.evidence["candidate"]["requests"] == 12
    assert "error_rate" in event.evidence["reason"]
    assert rollouts.current_rollout(ws) is None
    assert rollouts.latest_rollout(ws).status == "rolled_back"  # type: ignore[union-attr]


def test_restart_resumes_the_same_stage(ws: Workspace) -> None:
    traffic = FakeTraffic()
    rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=0.0)
    traffic.by_model["chat-v1.1"] = Metrics(requests=20)
    rollout.step_rollout(ws, traffic, now=10.0)
    ws.engine.dispose()
    reopened = open_workspace(ws.root, list(ws.overrides))
    resumed = rollouts.current_rollout(reopened)
    assert resumed is not None and (resumed.stage_index, resumed.traffic, resumed.stage_started_at) == (1, 0.2, 10.0)
    traffic.by_model["chat-v1.1"] = Metrics(requests=5)
    step = rollout.step_rollout(reopened, traffic, now=11.0)
    assert step is not None and step.action == "hold" and step.rollout.stage_index == 1


def test_crash_after_alias_swap_finishes_the_promotion(ws: Workspace) -> None:
    rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=0.0)
    registry.set_alias(ws, "production", "chat-v1.1")  # as a crash between two steps left it
    step = rollout.step_rollout(ws, FakeTraffic(), now=1.0)
    assert step is not None and step.action == "promoted"
    assert rollouts.latest_rollout(ws).status == "promoted"  # type: ignore[union-attr]


def test_manual_promote_rollback_and_revert(ws: Workspace) -> None:
    rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=0.0)
    rollouts.rollback(ws, by="cli", reason="operator said so", now=1.0)
    assert registry.aliases(ws)["production"] == "chat-v1.0"
    with pytest.raises(LLMOpsError, match="no rollout is running"):
        rollouts.promote(ws, by="cli")
    rollouts.start_rollout(ws, "chat-v1.1", by="cli", now=2.0)
    rollouts.promote(ws, by="cli", now=3.0)
    assert registry.aliases(ws) == {"production": "chat-v1.1", "previous": "chat-v1.0"}
    assert rollouts.rollback(ws, by="cli", now=4.0).production == "chat-v1.0"
    assert registry.aliases(ws)["production"] == "chat-v1.0"
    events = [(e.event, e.evidence.get("reason")) for e in rollouts.history(ws)]
    assert events == [("started", None), ("rolled_back", "operator said so"), ("started", None),
                      ("promoted", "manual"), ("reverted", "manual")]
