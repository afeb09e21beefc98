"""The loop's objective (dpo | kto | auto), KTO's class weights, and the KTO stage config from the one builder."""

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.data.kto import KTOStats
from llmops.data.preferences import PairStats, PreferenceCollector
from llmops.data.registry import get_dataset
from llmops.loop import flywheel
from llmops.loop.evaluate import Comparison, EvalItem
from llmops.loop.trigger import choose_objective, decide
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.settings import LoopSettings, TrainSettings
from llmops.train import configs
from llmops.train.objectives import RATIO_HIGH, RATIO_LOW, kto_weights
from llmops.workspace import Workspace, open_workspace

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(("desirable", "undesirable", "weights"), [
    (100, 100, (1.0, 1.0)), (120, 100, (1.0, 1.0)), (133, 100, (1.0, 1.0)),  # already in [1, 4/3]
    (113, 879, (7.7788, 1.0)),  # the demo's mix: few desirable answers are up-weighted
    (50, 100, (2.0, 1.0)), (300, 100, (1.0, 2.25)),  # many desirable: the undesirable ones are up-weighted
    (0, 10, (1.0, 1.0)), (10, 0, (1.0, 1.0)), (0, 0, (1.0, 1.0)),
])
def test_kto_weights_keep_the_papers_ratio(desirable: int, undesirable: int, weights: tuple[float, float]) -> None:
    assert kto_weights(desirable, undesirable) == weights
    chosen, rejected = weights
    if desirable and undesirable:
        ratio = chosen * desirable / (rejected * undesirable)
        assert RATIO_LOW - 1e-3 <= ratio <= RATIO_HIGH + 1e-3
        assert min(weights) == 1.0


def test_auto_picks_kto_when_pairs_are_a_small_share_of_the_signals() -> None:
    assert choose_objective("dpo", 0, 500, 0.5) == ("dpo", "objective dpo (loop.objective)")
    assert choose_objective("kto", 400, 500, 0.5)[0] == "kto"
    objective, why = choose_objective("auto", 113, 496, 0.5)
    assert objective == "kto" and "113 pairs are 23% of 496 usable votes and thumbs (< loop.auto_pair_share 50%)" in why
    assert choose_objective("auto", 300, 500, 0.5)[0] == "dpo"
    assert choose_objective("auto", 0, 0, 0.5)[0] == "dpo"  # no data: nothing to prefer KTO for


def test_the_trigger_counts_the_objectives_examples() -> None:
    pairs = PairStats(votes=500, valid_pairs=113, ties=4, both_bad=383)
    kto = KTOStats(votes=500, used_signals=496, desirable=113, undesirable=879, ties=4)
    dpo = decide(pairs, None, 0.0, LoopSettings(min_samples=200), kto)
    assert not dpo.fire and dpo.objective == "dpo" and dpo.new_examples == 113
    assert dpo.reasons[-1] == "counted: 113 valid pairs (DPO), 992 KTO examples"
    for objective in ("kto", "auto"):
        chosen = decide(pairs, None, 0.0, LoopSettings(min_samples=200, objective=objective), kto)
        assert chosen.fire and chosen.objective == "kto" and chosen.new_examples == 992
        assert chosen.reasons[0].startswith("992 new KTO examples (113 desirable, 879 undesirable) from 500 votes")
        assert chosen.progress()["min"] == 1.0 and chosen.new_pairs == 113
    assert decide(pairs, None, 0.0, LoopSettings(objective="kto")).new_examples == 0  # no KTO counts given


def test_the_kto_config_is_the_dpo_config_with_the_kto_delta(tmp_path: Path) -> None:
    config = configs.stage_config("kto", TrainSettings(), "kto", "Qwen/Qwen2-1.5B", "checkpoints/kto/kto-lora",
                                  kto_weights=(7.7788, 1.0))
    assert configs.config_yaml(config) == (GOLDEN / "kto_config.yaml").read_text(encoding="utf-8")
    dpo = configs.stage_config("dpo", TrainSettings(), "kto", "Qwen/Qwen2-1.5B", "checkpoints/kto/kto-lora")
    assert {k: v for k, v in dpo.items() if k not in ("stage", "pref_loss")} == {
        k: v for k, v in config.items() if k not in ("stage", "kto_chosen_weight", "kto_rejected_weight")}
    from llamafactory.hparams import get_train_args

    placed, _ = configs.adapt_to_device(dict(config, output_dir=str(tmp_path / "out")), cuda=False)
    _, _, _, finetuning_args, _ = get_train_args(placed)
    assert finetuning_args.stage == "kto" and finetuning_args.kto_chosen_weight == 7.7788
    assert finetuning_args.kto_rejected_weight == 1.0 and finetuning_args.pref_beta == 0.1
    beta = configs.stage_config("kto", configs.with_stage_values(TrainSettings(), "kto", "t", pref_beta=0.3),
                                "kto", "m", "out")
    assert beta["pref_beta"] == 0.3 and beta["kto_chosen_weight"] == 1.0


def test_loop_status_shows_both_counts_and_why_auto_chose(workspace: Workspace) -> None:
    collector = PreferenceCollector(workspace)
    collector.collect_preference("q1", "yes", "no", "a")
    for i in range(3):
        collector.collect_preference(f"q{i + 2}", f"bad {i}", f"worse {i}", "both_bad")
    args = ["loop", "status", "-w", str(workspace.root), "--set", "loop.objective=auto", "--set",
            "loop.min_samples=8"]
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "KTO trigger fires" in result.output and "8 new KTO examples (1 desirable, 7 undesirable)" in result.output
    assert "objective auto → kto: 1 pairs are 25% of 4 usable votes" in result.output
    assert "counted: 1 valid pairs (DPO), 8 KTO examples" in result.output
    assert "KTO examples" in result.output and "pairs (DPO)" in result.output


def test_a_kto_tick_exports_every_signal_and_trains_kto(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    heldout = workspace.root / "data/llmops/eval/heldout.jsonl"
    heldout.parent.mkdir(parents=True)
    heldout.write_text("".join(json.dumps({"prompt": f"held {i}"}) + "\n" for i in range(20)))
    ws = open_workspace(workspace.root, ["loop.objective=kto", "loop.min_samples=6"])
    collector = PreferenceCollector(ws)
    for i in range(3):
        collector.collect_preference(f"q{i}", f"bad {i}", f"worse {i}", "both_bad")
    calls: list[str] = []

    def train_kto(workspace: Workspace, dataset: str, parent: str, overrides: list[str]) -> ModelVersion:
        calls.append(dataset)
        return registry.register_version(workspace, kind="chat", stage="kto", parent=parent, base_model="b",
                                         path="adapter", merged=False)

    monkeypatch.setattr(flywheel, "train_kto", train_kto)
    judge = FixedJudge()
    result = flywheel.tick(ws, judge=judge)
    assert result.action == "rollout_started" and judge.asked == [("chat-v1.0", "chat-v1.1")]
    record = get_dataset(ws, calls[0])
    assert (record.kind, record.format, record.rows) == ("kto", "kto", 6) and calls[0].startswith("kto_")
    assert registry.get_version(ws, "chat-v1.1").stage == "kto"
    assert flywheel.should_trigger_dpo_training(ws).last_dpo_at is not None  # a KTO version starts a new cycle


class FixedJudge:
    """The new model wins every held-out prompt."""

    name = "fixed"

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def compare(self, old_model: str, new_model: str, items: Sequence[EvalItem]) -> list[Comparison]:
        self.asked.append((old_model, new_model))
        return [Comparison(item.prompt, 1.0, 0.0) for item in items]
