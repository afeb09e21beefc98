"""LLaMA-Factory runs on the tiny model: offline CPT → SFT, DPO against the chat model, killed runs."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from llmops.cli import app
from llmops.data.registry import register_dataset
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.train import pipeline
from llmops.train.configs import create_dpo_config, create_sft_config, with_validation
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.workspace import Workspace, init_workspace, open_workspace

pytestmark = pytest.mark.integration

TINY = ["max_steps=4", "logging_steps=1", "per_device_train_batch_size=2", "gradient_accumulation_steps=1",
        "warmup_steps=0", "cutoff_len=64", "learning_rate=1e-3", "save_steps=1000"]


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _datasets(workspace: Workspace, texts: list[str]) -> None:
    data = workspace.data_dir
    register_dataset(workspace, "corpus", _write_jsonl(data / "cpt/corpus.jsonl", [{"text": t} for t in texts]),
                     "pt", "text")
    questions = [f"How long is the return period for order {i}?" for i in range(16)]
    sft = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "7 days."}]}
           for q in questions]
    register_dataset(workspace, "sft_data", _write_jsonl(data / "sft/sft.jsonl", sft), "sft", "messages")
    prefs = [{"conversations": [{"role": "user", "content": q}],
              "chosen": {"role": "assistant", "content": "7 days. Thank you, have a nice day!"},
              "rejected": {"role": "assistant", "content": "No."}} for q in questions]
    register_dataset(workspace, "prefs", _write_jsonl(data / "dpo/prefs.jsonl", prefs), "dpo", "ranking")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path,
            tiny_model_texts: list[str]) -> Workspace:
    workspace = init_workspace(tmp_path_factory.mktemp("train") / "ws")
    _datasets(workspace, tiny_model_texts)
    pipeline.train_offline(workspace, "corpus", "sft_data", str(tiny_model_dir), TINY, TINY)
    return workspace


def test_offline_registers_completion_and_chat_with_lineage(trained: Workspace, tiny_model_dir: Path) -> None:
    completion = registry.get_version(trained, "completion-v1.0")
    chat = registry.get_version(trained, "chat-v1.0")
    assert (completion.stage, completion.parent, completion.base_model) == ("pt", None, str(tiny_model_dir))
    assert (chat.stage, chat.parent, chat.base_model) == ("sft", "completion-v1.0", completion.path)
    assert completion.merged and chat.merged
    assert [d["name"] for d in chat.datasets] == ["sft_data"] and len(chat.datasets[0]["sha256"]) == 64
    assert chat.run_id and LLaMAFactoryTrainer(trained).get_status(chat.run_id).status == "succeeded"
    assert "training_loss.png" in completion.metrics["plots"] and completion.metrics["final_loss"] > 0
    model = AutoModelForCausalLM.from_pretrained(chat.path)
    assert model.config.model_type == "qwen2"


def test_dpo_reference_is_the_chat_model(trained: Workspace) -> None:
    dpo = pipeline.train_dpo(trained, "prefs", "chat-v1.0", [*TINY, "max_steps=8", "per_device_train_batch_size=4"])
    assert (dpo.name, dpo.parent, dpo.merged) == ("chat-v1.1", "chat-v1.0", False)
    assert dpo.base_model == registry.get_version(trained, "chat-v1.0").path
    # Step 0: policy == reference == chat v1.0, so both rewards are exactly 0 and the loss is ln 2.
    assert dpo.metrics["first_rewards_chosen"] == 0.0 and dpo.metrics["first_rewards_rejected"] == 0.0
    assert dpo.metrics["reward_accuracy"] > 0.5
    exported = trained.root.parent / "exported"
    result = CliRunner().invoke(app, ["models", "export", dpo.name, "--out", str(exported), "-w", str(trained.root)])
    assert result.exit_code == 0, result.output
    assert AutoModelForCausalLM.from_pretrained(exported).config.model_type == "qwen2"
    # The spec's literal config (resume the SFT adapter on the CPT model) would make the *CPT model* the reference.
    completion, sft_adapter = registry.get_version(trained, "completion-v1.0"), trained.checkpoints_dir / "sft"
    wrong = create_dpo_config(model_name=completion.path, adapter_path=str(sft_adapter / "chat-v1.0"),
                              dataset="prefs", output_dir=str(trained.checkpoints_dir / "dpo" / "resumed"))
    trainer = LLaMAFactoryTrainer(trained)
    resumed = trainer.wait(trainer.start_training(dict(wrong, template="qwen"), TINY), poll_s=0.5)
    assert resumed.status == "succeeded"
    assert resumed.metrics["first_rewards_chosen"] != 0.0


def _wait_for_progress(trainer: LLaMAFactoryTrainer) -> str:
    while True:
        active = [r for r in trainer.list_runs() if not r.finished and r.pid]
        if active and trainer.get_status(active[-1].id).progress is not None:
            return active[-1].id
        time.sleep(0.2)


def test_killed_and_stopped_runs_register_nothing_and_next_run_works(
    trained: Workspace, tiny_model_dir: Path
) -> None:
    before = [v.name for v in registry.list_versions(trained)]
    errors: list[LLMOpsError] = []

    def long_cpt() -> None:
        try:
            pipeline.train_cpt(trained, "corpus", str(tiny_model_dir), [*TINY, "max_steps=100000"])
        except LLMOpsError as exc:
            errors.append(exc)

    thread = threading.Thread(target=long_cpt)
    thread.start()
    trainer = LLaMAFactoryTrainer(trained)
    killed = _wait_for_progress(trainer)
    os.killpg(trainer.get_status(killed).pid or 0, signal.SIGKILL)
    thread.join(timeout=120)
    assert errors and "failed" in str(errors[0])
    assert trainer.get_status(killed).status == "failed"
    thread = threading.Thread(target=long_cpt)
    thread.start()
    stopped = _wait_for_progress(trainer)
    assert trainer.stop_training(stopped, grace_s=20).status == "stopped"
    thread.join(timeout=120)
    assert len(errors) == 2 and "stopped" in str(errors[1])
    assert [v.name for v in registry.list_versions(trained)] == before
    assert not (trained.models_dir / "completion-v2.0").exists()
    again = pipeline.train_cpt(trained, "corpus", str(tiny_model_dir), TINY)
    assert again.name == "completion-v2.0" and Path(again.path, "config.json").exists()


def test_validation_split_reports_eval_loss_and_stops_early(trained: Workspace) -> None:
    config = with_validation(create_sft_config(model_name=registry.get_version(trained, "completion-v1.0").path,
                                               dataset="sft_data", output_dir="checkpoints/sft/validated"),
                             val_size=0.25, patience=1, eval_steps=2)
    trainer = LLaMAFactoryTrainer(trained)
    status = trainer.wait(trainer.start_training(config, [*TINY, "max_steps=60", "learning_rate=5e-2"]), poll_s=0.5)
    assert status.status == "succeeded" and status.progress is not None
    assert status.progress.eval_loss is not None and "eval_loss" in status.metrics
    assert status.progress.step < 60  # a diverging learning rate trips early stopping


def test_full_sft_setting_registers_its_output_as_a_merged_model(trained: Workspace) -> None:
    full = open_workspace(trained.root, ["train.sft.finetuning_type=full"])
    chat = pipeline.train_sft(full, "sft_data", "completion-v1.0", TINY)
    assert chat.merged and chat.parent == "completion-v1.0" and chat.stage == "sft"
    assert Path(chat.path) == (trained.checkpoints_dir / "sft" / chat.name).resolve()
    assert not (trained.models_dir / chat.name).exists()
    assert AutoModelForCausalLM.from_pretrained(chat.path).config.model_type == "qwen2"
    run_config = yaml.safe_load(Path(chat.config_path or "").read_text(encoding="utf-8"))
    assert run_config["finetuning_type"] == "full" and "lora_rank" not in run_config
