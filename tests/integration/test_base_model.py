"""The tiny base model: pre-training lowers the held-out loss, the build is reproducible and reused, and
LLaMA-Factory fine-tunes it with `template: qwen`."""

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from llmops.cli import app
from llmops.demo.base_model import (
    BaseModelSpec,
    build_base_model,
    corpus_digest,
    ensure_base_model,
    read_build_info,
)
from llmops.demo.preset import preset_texts
from llmops.errors import LLMOpsError

pytestmark = pytest.mark.integration


def test_pretraining_more_than_halves_heldout_loss(tiny_model_dir: Path, tiny_model_spec: BaseModelSpec) -> None:
    info = read_build_info(tiny_model_dir)
    assert info is not None
    assert isinstance(info["loss_before"], float) and isinstance(info["loss_after"], float)
    assert info["loss_after"] < info["loss_before"] / 2
    assert info["spec"] == asdict(tiny_model_spec)


def test_folder_loads_with_auto_classes_and_ids_match(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    assert (tiny_model_dir / "model.safetensors").is_file()
    assert model.config.model_type == "qwen2" and model.config.tie_word_embeddings
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.eos_token_id == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "蓝牙耳机多少钱？"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]


def test_same_seed_gives_identical_weights(
    tiny_model_dir: Path, tiny_model_texts: list[str], tiny_model_spec: BaseModelSpec, tmp_path: Path
) -> None:
    report = build_base_model(tmp_path / "again", tiny_model_texts, tiny_model_spec)
    first, second = load_file(tiny_model_dir / "model.safetensors"), load_file(report.out_dir / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert (tiny_model_dir / "tokenizer.json").read_text() == (report.out_dir / "tokenizer.json").read_text()


def test_ensure_base_model_reuses_a_finished_build(
    tiny_model_texts: list[str], tiny_model_spec: BaseModelSpec, tmp_path: Path
) -> None:
    built = ensure_base_model(tmp_path / "cache", tiny_model_texts, tiny_model_spec)
    stamp = (built / "model.safetensors").stat().st_mtime_ns
    assert ensure_base_model(tmp_path / "cache", tiny_model_texts, tiny_model_spec) == built
    assert (built / "model.safetensors").stat().st_mtime_ns == stamp
    rebuilt = ensure_base_model(tmp_path / "cache", tiny_model_texts[1:], tiny_model_spec)
    assert rebuilt == built and (built / "model.safetensors").stat().st_mtime_ns != stamp


def test_llamafactory_sft_lora_runs_two_steps(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = [
        {"instruction": f"蓝牙耳机多少钱？第{i}问", "input": "", "output": "售价199元，祝您购物愉快！"}
        for i in range(4)
    ]
    rows += [{"instruction": "How much is the lamp?", "input": "", "output": "59 yuan. Have a nice day!"}] * 4
    (tmp_path / "sft.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"tiny_sft": {"file_name": "sft.json"}}))
    output_dir = tmp_path / "out"
    config = {
        "model_name_or_path": str(tiny_model_dir),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_target": "all",
        "dataset": "tiny_sft",
        "dataset_dir": str(tmp_path),
        "template": "qwen",
        "cutoff_len": 128,
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 2,
        "max_steps": 2,
        "learning_rate": 1.0e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "bf16": False,
        "fp16": False,
    }
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(config))
    cli = Path(sys.executable).with_name("llamafactory-cli")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DISABLE_VERSION_CHECK": "1"}
    result = subprocess.run(
        [str(cli), "train", str(tmp_path / "sft.yaml")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [json.loads(line) for line in (output_dir / "trainer_log.jsonl").read_text().splitlines()]
    losses = [(step["current_steps"], step["loss"]) for step in steps if "loss" in step]
    assert [number for number, _ in losses] == [1, 2]
    assert all(math.isfinite(loss) for _, loss in losses)
    assert (output_dir / "adapter_model.safetensors").is_file()


def test_build_base_command_writes_the_model_and_prints_losses(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "build-base", "--out", str(tmp_path / "base"), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "held-out loss before" in result.output and "held-out loss after" in result.output
    info = read_build_info(tmp_path / "base")
    assert info is not None and info["spec"] == asdict(replace(BaseModelSpec(), steps=2))
    assert info["corpus_sha256"] == corpus_digest(preset_texts())
    assert AutoTokenizer.from_pretrained(str(tmp_path / "base")).eos_token == "<|im_end|>"


def test_build_refuses_to_replace_a_folder_of_other_files(
    tiny_model_texts: list[str], tiny_model_spec: BaseModelSpec, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(LLMOpsError, match="not a base model build"):
        build_base_model(tmp_path, tiny_model_texts, tiny_model_spec)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
