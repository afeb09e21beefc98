import json
import re
import subprocess
import sys
from collections.abc import Sequence

import pytest

from llmops import db
from llmops.data.preferences import PreferenceCollector
from llmops.data.registry import dataset_path
from llmops.errors import LLMOpsError
from llmops.loop import flywheel
from llmops.loop.evaluate import Comparison, EvalItem
from llmops.models import registry, rollouts
from llmops.models.registry import ModelVersion
from llmops.workspace import Workspace, open_workspace


class FixedJudge:
    """Judges every held-out prompt with the same verdict (1.0 = the new model wins)."""

    name = "fixed"

    def __init__(self, outcome: float) -> None:
        self.outcome = outcome
        self.asked: list[tuple[str, str, int]] = []

    def compare(self, old_model: str, new_model: str, items: Sequence[EvalItem]) -> list[Comparison]:
        self.asked.append((old_model, new_model, len(items)))
        return [Comparison(item.prompt, self.outcome, 1.0 - self.outcome) for item in items]


class RecordingTrainer:
    """Registers a DPO version the way the training pipeline does, without training."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []

    def __call__(self, workspace: Workspace, dataset: str, parent: str, overrides: list[str]) -> ModelVersion:
        self.calls.append((dataset, parent, overrides))
        return registry.register_version(workspace, kind="chat", stage="dpo", parent=parent, base_model="b",
                                         path="adapter", merged=False)


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p",
                              merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    heldout = workspace.root / "data/llmops/eval/heldout.jsonl"
    heldout.parent.mkdir(parents=True)
    heldout.write_text("".join(json.dumps({"prompt": f"held {i}"}) + "\n" for i in range(40)))
    return open_workspace(workspace.root, ["loop.min_samples=5", "loop.dpo_overrides=[pref_ftx=1.0]"])


def _votes(ws: Workspace, n: int) -> None:
    collector = PreferenceCollector(ws)
    for i in range(n):
        collector.collect_preference(f"q{i}", f"good {i}", f"bad {i}", "A")


def test_tick_waits_for_enough_pairs(ws: Workspace) -> None:
    _votes(ws, 4)
    trainer = RecordingTrainer()
    result = flywheel.tick(ws, trainer, FixedJudge(1.0))
    assert result.action == "waiting" and "4 new valid pairs" in result.detail
    assert trainer.calls == []


def test_tick_trains_evaluates_and_starts_the_canary(ws: Workspace) -> None:
    _votes(ws, 5)
    trainer, judge = RecordingTrainer(), FixedJudge(1.0)
    result = flywheel.tick(ws, trainer, judge)
    assert result.action == "rollout_started"
    assert re.match(r"chat-v1\.1: win rate 1\.000, 95% interval \[1\.000, 1\.000\]: gate passed \(lower bound 1\.000 > "
                    r"0\.5\); canary at 5%$", result.detail), result.detail
    dataset, parent, overrides = trainer.calls[0]
    assert dataset.startswith("prefs_") and parent == "chat-v1.0" and overrides == ["pref_ftx=1.0"]
    assert judge.asked == [("chat-v1.0", "chat-v1.1", 40)]
    running = rollouts.current_rollout(ws)
    assert running is not None and running.candidate == "chat-v1.1" and running.traffic == 0.05
    started = rollouts.history(ws)[-1]
    assert started.event == "started" and started.evidence["evaluation"]["win_rate"] == 1.0
    assert flywheel.tick(ws, trainer, judge).action == "rollout_hold"
    assert len(trainer.calls) == 1


def test_the_second_turn_trains_production_on_the_votes_since_the_last_dpo_version(ws: Workspace) -> None:
    ws = open_workspace(ws.root, ["loop.min_samples=5", "loop.days_threshold=0"])
    _votes(ws, 5)
    trainer, judge = RecordingTrainer(), FixedJudge(1.0)
    assert flywheel.tick(ws, trainer, judge).action == "rollout_started"
    rollouts.promote(ws, by="loop", reason="test")
    collector = PreferenceCollector(ws)
    for i in range(6):
        collector.collect_preference(f"new q{i}", f"better {i}", f"worse {i}", "B")
    second = flywheel.tick(ws, trainer, judge)
    assert second.action == "rollout_started", second.detail
    dataset, parent, _ = trainer.calls[1]
    assert parent == "chat-v1.1" and judge.asked[1] == ("chat-v1.1", "chat-v1.2", 40)
    rows = [json.loads(line) for line in dataset_path(ws, dataset).read_text().splitlines()]
    assert sorted(row["chosen"]["content"] for row in rows) == [f"worse {i}" for i in range(6)]


def test_gate_failure_rejects_the_candidate(ws: Workspace) -> None:
    _votes(ws, 5)
    result = flywheel.tick(ws, RecordingTrainer(), FixedJudge(0.5))
    assert result.action == "gate_failed" and "does not clear 0.5" in result.detail
    assert registry.get_version(ws, "chat-v1.1").status == "rejected"
    assert rollouts.current_rollout(ws) is None
    assert rollouts.history(ws)[-1].event == "gate_failed"
    assert flywheel.tick(ws, RecordingTrainer(), FixedJudge(1.0)).action == "waiting"


def test_a_version_trained_before_a_crash_is_evaluated_next(ws: Workspace) -> None:
    registry.register_version(ws, kind="chat", stage="dpo", parent="chat-v1.0", base_model="b", path="a",
                              merged=False)
    trainer = RecordingTrainer()
    assert flywheel.tick(ws, trainer, FixedJudge(1.0)).action == "rollout_started"
    assert trainer.calls == []


def test_a_held_lock_or_a_running_dpo_run_blocks(ws: Workspace) -> None:
    _votes(ws, 5)
    with flywheel.loop_lock(ws) as held:
        assert held
        assert flywheel.tick(ws, RecordingTrainer(), FixedJudge(1.0)).action == "busy"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # dpo-1"])
    try:
        with ws.engine.begin() as conn:
            conn.execute(db.runs.insert().values(id="dpo-1", stage="dpo", config_path="c", output_dir="o",
                                                 run_dir="r", status="running", pid=sleeper.pid, started_at=0.0))
        result = flywheel.tick(ws, RecordingTrainer(), FixedJudge(1.0))
        assert (result.action, result.detail) == ("busy", "DPO run dpo-1 is still running")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert flywheel.tick(ws, RecordingTrainer(), FixedJudge(1.0)).action == "rollout_started"


def test_parse_every() -> None:
    assert [flywheel.parse_every(t) for t in ("10m", "30s", "2h", "1d", "45")] == [600, 30, 7200, 86400, 45]
    for bad in ("soon", "0m", ""):
        with pytest.raises(LLMOpsError):
            flywheel.parse_every(bad)


def test_run_forever_reports_errors_and_keeps_going(workspace: Workspace) -> None:
    seen: list[flywheel.TickResult] = []
    flywheel.run_forever(workspace, 0.01, seen.append, max_ticks=2)
    assert [r.action for r in seen] == ["waiting", "waiting"]
    no_production = open_workspace(workspace.root, ["loop.min_samples=1"])
    _votes(no_production, 1)
    flywheel.run_forever(no_production, 0.01, seen.append, max_ticks=2)
    assert [r.action for r in seen[2:]] == ["error", "error"]
    assert "production" in seen[-1].detail
    assert not (workspace.root / "data/llmops/dpo/prefs.jsonl").exists()
