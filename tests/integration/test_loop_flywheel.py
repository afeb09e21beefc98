"""One real loop tick on the tiny model: trigger → export → LLaMA-Factory DPO → register → evaluate → gate."""

import json
from pathlib import Path

import pytest

from llmops.data.preferences import PreferenceCollector
from llmops.loop import flywheel
from llmops.models import registry, rollouts
from llmops.workspace import init_workspace, open_workspace

pytestmark = pytest.mark.integration
DPO = ["max_steps=3", "logging_steps=1", "per_device_train_batch_size=2", "gradient_accumulation_steps=1",
       "warmup_steps=0", "cutoff_len=64", "learning_rate=1e-3", "save_steps=1000", "pref_ftx=1.0"]


def test_tick_trains_dpo_and_gates_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    registry.register_version(ws, kind="chat", stage="sft", parent=None, base_model=str(tiny_model_dir),
                              path=str(tiny_model_dir), merged=True)
    registry.set_alias(ws, "production", "chat-v1.0")
    collector = PreferenceCollector(ws)
    for i in range(6):
        collector.collect_preference(f"How long is the return period for order {i}?",
                                     "7 days. Thank you, have a nice day!", "No.", "A")
    heldout = ws.root / "data/llmops/eval/heldout.jsonl"
    heldout.parent.mkdir(parents=True)
    heldout.write_text("".join(json.dumps({"prompt": f"Can I return item {i}?", "reference": "Yes, within 7 days."})
                               + "\n" for i in range(5)))
    overrides = ["loop.min_samples=5", *(f"train.dpo.{setting}" for setting in DPO), "loop.gate_lower_bound=1.0",
                 "serve.max_new_tokens=8", "loop.bootstrap_samples=200"]
    ws = open_workspace(ws.root, overrides)

    result = flywheel.tick(ws)

    assert result.action == "gate_failed"
    candidate = registry.get_version(ws, "chat-v1.1")
    assert (candidate.stage, candidate.parent, candidate.status) == ("dpo", "chat-v1.0", "rejected")
    assert (Path(candidate.path) / "adapter_config.json").is_file()
    evaluation = result.evidence["evaluation"]
    assert (evaluation["judge"], evaluation["comparisons"], evaluation["new_model"]) == ("rouge_l", 5, "chat-v1.1")
    assert rollouts.history(ws)[-1].event == "gate_failed"
    assert flywheel.tick(ws).action == "waiting"
