"""Every dataset the data layer writes is accepted by a 2-step `llamafactory-cli train` on the tiny model."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops.data.corpus import build_corpus
from llmops.data.preferences import PreferenceCollector, export_preferences
from llmops.data.self_instruct import generate_sft_dataset
from llmops.demo.preset import load_products, preset_documents
from llmops.demo.templates import shop_templates
from llmops.workspace import Workspace

pytestmark = pytest.mark.integration


def train_two_steps(workspace: Workspace, model: Path, stage: str, dataset: str, out: Path) -> Path:
    """Run `llamafactory-cli train` for 2 LoRA steps on CPU; returns the output folder."""
    config: dict[str, Any] = {
        "model_name_or_path": str(model), "stage": stage, "do_train": True, "finetuning_type": "lora",
        "lora_target": "all", "lora_rank": 4, "dataset": dataset, "dataset_dir": str(workspace.data_dir),
        "template": "qwen", "cutoff_len": 128, "max_samples": 16, "output_dir": str(out),
        "overwrite_output_dir": True, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
        "max_steps": 2, "learning_rate": 1.0e-4, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
        "fp16": False, "bf16": False, "dataloader_num_workers": 0,
    }
    if stage == "dpo":
        config.update({"pref_beta": 0.1, "pref_loss": "sigmoid"})
    config_path = out.parent / f"{stage}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    cli = Path(sys.executable).parent / "llamafactory-cli"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1"}
    result = subprocess.run([str(cli), "train", str(config_path)], env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "Invalid role tag" not in log and "Invalid message count" not in log  # no sample was dropped
    assert (out / "adapter_model.safetensors").exists()
    assert (out / "trainer_log.jsonl").read_text().count("\n") >= 2  # one line per logged step
    return out


def test_pt_accepts_the_domain_corpus(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path) -> None:
    report = build_corpus(workspace, preset_documents()[:3], tokenizer=str(tiny_model_dir), chunk_size=128)
    train_two_steps(workspace, tiny_model_dir, "pt", report.dataset.name, tmp_path / "pt")


def test_sft_accepts_self_instruct_data(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path) -> None:
    report = generate_sft_dataset(workspace, 16, closing_rate=0.5, documents=preset_documents(),
                                  templates=shop_templates(load_products()))
    train_two_steps(workspace, tiny_model_dir, "sft", report.dataset.name, tmp_path / "sft")


def test_dpo_accepts_exported_preferences(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path) -> None:
    collector = PreferenceCollector(workspace)
    for i in range(8):
        collector.collect_preference(f"Nimbus H{i} 多少钱？", f"售价 ¥{300 + i}。希望对您有帮助！", f"¥{300 + i}",
                                     "A" if i % 2 else "B", {"model_a": "v1.0", "model_b": "v1.1", "i": i})
    collector.collect_preference("tie question", "x", "y", "tie")
    report = export_preferences(workspace)
    assert report.stats.valid_pairs == 8
    train_two_steps(workspace, tiny_model_dir, "dpo", "prefs", tmp_path / "dpo")
