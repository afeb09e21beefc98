"""Spec 6.1: a candidate the gate rejects is retrained with the next of `loop.retry_recipes`, then the loop waits."""

import json
from collections.abc import Sequence

import pytest

from llmops.data.preferences import PreferenceCollector
from llmops.errors import LLMOpsError
from llmops.loop import flywheel, retry
from llmops.loop.evaluate import Comparison, EvalItem, Evaluation
from llmops.models import registry, rollouts
from llmops.models.registry import ModelVersion
from llmops.settings import LoopSettings
from llmops.workspace import Workspace, open_workspace

RECIPES = "loop.retry_recipes=[{num_train_epochs: 4}, {pref_ftx: 1.0, learning_rate: 5e-5}]"


class ScriptedJudge:
    """Judges every held-out prompt of the n-th evaluation with the n-th outcome (1.0 = the new model wins)."""

    name = "scripted"

    def __init__(self, *outcomes: float) -> None:
        self.outcomes = list(outcomes)

    def compare(self, old_model: str, new_model: str, items: Sequence[EvalItem]) -> list[Comparison]:
        outcome = self.outcomes.pop(0)
        return [Comparison(item.prompt, outcome, 1.0 - outcome) for item in items]


class RecordingTrainer:
    """Registers a DPO version the way the training pipeline does, without training."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, workspace: Workspace, dataset: str, parent: str, overrides: list[str]) -> ModelVersion:
        self.calls.append((dataset, overrides))
        return registry.register_version(workspace, kind="chat", stage="dpo", parent=parent, base_model="b",
                                         path="adapter", merged=False)


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p",
                              merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    heldout = workspace.root / "data/llmops/eval/heldout.jsonl"
    heldout.parent.mkdir(parents=True)
    heldout.write_text("".join(json.dumps({"prompt": f"held {i}"}) + "\n" for i in range(20)))
    return open_workspace(workspace.root, ["loop.min_samples=5", "loop.days_threshold=0",
                                           "loop.dpo_overrides=[pref_beta=0.2]", RECIPES])


def _votes(ws: Workspace, n: int, tag: str = "") -> None:
    collector = PreferenceCollector(ws)
    for i in range(n):
        collector.collect_preference(f"q{tag}{i}", f"good {tag}{i}", f"bad {tag}{i}", "A")


def _judged(ws: Workspace) -> list[tuple[str, str, int, dict[str, object], float]]:
    return [(e.candidate, e.event, e.evidence["attempt"]["number"], e.evidence["attempt"]["recipe"],
             e.evidence["evaluation"]["win_rate"]) for e in rollouts.history(ws) if e.event in retry.JUDGED]


def test_each_rejection_retries_with_the_next_recipe_then_waits(ws: Workspace) -> None:
    _votes(ws, 5)
    trainer, judge = RecordingTrainer(), ScriptedJudge(0.0, 0.5, 0.0)
    assert [flywheel.tick(ws, trainer, judge).action for _ in range(4)] == ["gate_failed"] * 3 + ["waiting"]
    datasets = {dataset for dataset, _ in trainer.calls}
    assert len(datasets) == 1 and datasets.pop().startswith("prefs_")
    assert [overrides for _, overrides in trainer.calls] == [
        ["pref_beta=0.2"], ["pref_beta=0.2", "num_train_epochs=4"],
        ["pref_beta=0.2", "pref_ftx=1.0", "learning_rate=5e-05"]]
    assert _judged(ws) == [
        ("chat-v1.1", "gate_failed", 1, {}, 0.0),
        ("chat-v1.2", "gate_failed", 2, {"num_train_epochs": 4}, 0.5),
        ("chat-v1.3", "gate_failed", 3, {"pref_ftx": 1.0, "learning_rate": 5e-5}, 0.0)]
    failed = rollouts.history(ws, "chat-v1.2")[-1].evidence
    assert failed["evaluation"]["ci_low"] <= 0.5 <= failed["evaluation"]["ci_high"]
    assert all(registry.get_version(ws, f"chat-v1.{n}").status == "rejected" for n in (1, 2, 3))
    assert flywheel.tick(ws, trainer, judge).action == "waiting" and len(trainer.calls) == 3


def test_new_data_resets_the_attempts(ws: Workspace) -> None:
    _votes(ws, 5)
    trainer = RecordingTrainer()
    judge = ScriptedJudge(0.0, 0.0, 0.0, 1.0)
    assert [flywheel.tick(ws, trainer, judge).action for _ in range(4)] == ["gate_failed"] * 3 + ["waiting"]
    _votes(ws, 5, tag="new")
    assert flywheel.tick(ws, trainer, judge).action == "rollout_started"
    first, last = trainer.calls[0][0], trainer.calls[-1][0]
    assert last != first and trainer.calls[-1][1] == ["pref_beta=0.2"]
    started = rollouts.history(ws)[-1]
    assert started.event == "started" and started.evidence["attempt"]["number"] == 1
    assert started.evidence["attempt"]["data_sha256"] != rollouts.history(ws, "chat-v1.1")[-1].evidence[
        "attempt"]["data_sha256"]


def test_a_retry_that_passes_starts_the_canary_and_ends_the_retries(ws: Workspace) -> None:
    _votes(ws, 5)
    trainer, judge = RecordingTrainer(), ScriptedJudge(0.0, 1.0)
    assert [flywheel.tick(ws, trainer, judge).action for _ in range(2)] == ["gate_failed", "rollout_started"]
    assert [e.event for e in rollouts.history(ws, "chat-v1.2")] == ["trained", "started"]
    rollouts.rollback(ws, by="cli")
    assert flywheel.tick(ws, trainer, judge).action == "waiting" and len(trainer.calls) == 2


def test_without_recipes_a_rejection_waits_for_new_data(ws: Workspace) -> None:
    plain = open_workspace(ws.root, ["loop.min_samples=5", "loop.days_threshold=0"])
    _votes(plain, 5)
    trainer = RecordingTrainer()
    assert flywheel.tick(plain, trainer, ScriptedJudge(0.0)).action == "gate_failed"
    assert flywheel.tick(plain, trainer, ScriptedJudge(1.0)).action == "waiting" and len(trainer.calls) == 1


def _evaluation(win_rate: float, ci_low: float) -> Evaluation:
    return Evaluation("a", "b", "j", win_rate, ci_low, 1.0, 0, 0, 1.0, 10, 10, 5, 5, 0)


def test_next_recipe_is_a_function_of_the_attempts_and_the_settings() -> None:
    s = LoopSettings(retry_recipes=[{"num_train_epochs": 4}, {"pref_ftx": 1.0}], gate_lower_bound=0.5)
    failed, passed = _evaluation(0.4, 0.3), _evaluation(0.9, 0.8)

    def attempts(*evaluations: Evaluation | None) -> list[retry.Attempt]:
        return [retry.Attempt("d", "sha", n, {}, e) for n, e in enumerate(evaluations, 1)]

    assert retry.next_recipe([], s) == {}
    assert retry.next_recipe(attempts(failed), s) == {"num_train_epochs": 4}
    assert retry.next_recipe(attempts(failed, failed), s) == {"pref_ftx": 1.0}
    assert retry.next_recipe(attempts(failed, failed, failed), s) is None
    assert retry.next_recipe(attempts(passed), s) is None
    assert retry.next_recipe(attempts(None), s) is None
    assert retry.recipe_overrides({"learning_rate": 5e-5, "pref_loss": "ipo"}) == [
        "learning_rate=5e-05", 'pref_loss="ipo"']


@pytest.mark.parametrize(("recipes", "message"), [
    ("[{epochs: 4}]", "recipe 1: epochs: not a train.dpo setting"),
    ("[{num_train_epochs: 2}, {num_train_epochs: 0}]", "recipe 2: train.dpo: num_train_epochs"),
    ("[{pref_loss: lasso}]", "recipe 1: train.dpo: pref_loss"),
])
def test_recipes_are_checked_against_train_dpo_at_load(workspace: Workspace, recipes: str, message: str) -> None:
    with pytest.raises(LLMOpsError, match=f"loop.retry_recipes: .*{message}"):
        open_workspace(workspace.root, [f"loop.retry_recipes={recipes}"])
