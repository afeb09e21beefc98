"""KTO on every vote and thumb: the export is read by LLaMA-Factory's own loader in a few KTO steps on the tiny model,
through the product's pipeline, and the reference model is the parent chat model (the KTO twin of the DPO test)."""

import time
from pathlib import Path

import pytest
import yaml

from llmops import db
from llmops.data.kto import export_kto
from llmops.data.preferences import PreferenceCollector
from llmops.models import registry
from llmops.serve import feedback
from llmops.train import pipeline
from llmops.train.objectives import kto_weights
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.workspace import Workspace

pytestmark = pytest.mark.integration

TINY = ["max_steps=3", "logging_steps=1", "per_device_train_batch_size=8", "gradient_accumulation_steps=1",
        "warmup_steps=0", "cutoff_len=64", "learning_rate=1e-3", "save_steps=1000", "seed=7"]


def _signals(workspace: Workspace) -> None:
    """Votes of every kind and thumbs on served completions, stored as the arena and the gateway store them."""
    votes = [{"question": f"How long is the return period for order {i}?", "response_a": "7 days. Thank you!",
              "response_b": f"No idea {i}.", "choice": ("a", "b", "both_bad", "tie")[i % 4], "user": f"u{i}"}
             for i in range(12)]
    PreferenceCollector(workspace).collect_many(votes)
    with workspace.engine.begin() as conn:
        for i in range(6):
            messages = [{"role": "user", "content": f"Do you ship to city {i}?"}]
            conn.execute(db.requests.insert().values(
                id=f"chatcmpl-{i}", model="chat-v1.0", created_at=time.time(), latency_ms=1.0, completion_tokens=3,
                ok=True, user=f"t{i}", messages=messages, answer="Yes, in 3 days." if i % 2 else "Maybe."))
    for i in range(6):
        thumb = feedback.new_thumb(workspace, f"chatcmpl-{i}", "up" if i % 2 else "down", user=f"t{i}")
        with workspace.engine.begin() as conn:
            feedback.store_thumb(conn, thumb)


def test_kto_trains_on_every_signal_against_the_parent(workspace: Workspace, tiny_model_dir: Path) -> None:
    chat = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="tiny",
                                     path=str(tiny_model_dir), merged=True)
    _signals(workspace)
    report = export_kto(workspace)
    stats = report.stats
    # 3 a + 3 b → 6 desirable + 6 undesirable; 3 both_bad → 6 undesirable; 3 ties out; thumbs: 3 up, 3 down
    assert (stats.ties, stats.desirable, stats.undesirable, stats.thumbs) == (3, 9, 15, 6)
    kto = pipeline.train_kto(workspace, "kto", chat.name, TINY)
    assert (kto.stage, kto.parent, kto.merged, kto.name) == ("kto", chat.name, False, "chat-v1.1")
    assert kto.base_model == chat.path and [d["name"] for d in kto.datasets] == ["kto"]
    config = yaml.safe_load(Path(kto.config_path).read_text(encoding="utf-8"))
    assert config["stage"] == "kto" and "adapter_name_or_path" not in config and "ref_model" not in config
    assert (config["kto_chosen_weight"], config["kto_rejected_weight"]) == kto_weights(9, 15) == (1.6667, 1.0)
    status = LLaMAFactoryTrainer(workspace).get_status(kto.run_id or "")
    log = status.log_path.read_text(encoding="utf-8")
    assert "Invalid role tag" not in log and "Invalid message count" not in log  # no example was dropped
    # Step 1: a new LoRA (B = 0) on the parent, whose reference is the parent itself: both rewards are exactly 0.
    assert kto.metrics["first_rewards_chosen"] == 0.0 and kto.metrics["first_rewards_rejected"] == 0.0
    assert kto.metrics["rewards_chosen"] != 0.0  # and the policy moved away from it
