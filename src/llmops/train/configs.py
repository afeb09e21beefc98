"""LLaMA-Factory training configs for CPT, SFT and DPO (spec 3.1.3, 3.2.3, 3.3.3, 7.2.x, appendix A).

The three builders return plain dicts with the spec's defaults; `config_yaml` turns one into YAML (a pure
function, tested against golden files); `write_config` places a config in a workspace: dataset_dir is the
workspace's data/llmops, relative output paths land in the workspace, `key=value` overrides of any
LLaMA-Factory key are applied, fp16/bf16 are switched off without CUDA, and the YAML goes to
`configs/llmops/<stage>_config_<YYYYmmdd_HHMMSS>.yaml`.

Multi-GPU and DeepSpeed are LLaMA-Factory's job: set `deepspeed=<ds_config.json>` as an override and
FORCE_TORCHRUN=1 (plus NNODES, NPROC_PER_NODE …) in the environment; both are passed through unchanged.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops.errors import LLMOpsError
from llmops.fileio import write_text_atomic
from llmops.settings import parse_override
from llmops.workspace import Workspace

FILE_STAGES = {"pt": "cpt", "sft": "sft", "dpo": "dpo"}
PATH_KEYS = ("output_dir", "model_name_or_path", "adapter_name_or_path", "ref_model", "deepspeed")


def create_cpt_config(
    model_name: str = "Qwen/Qwen2-1.5B",
    dataset: str = "domain_corpus",
    output_dir: str = "checkpoints/cpt/domain-cpt",
    num_train_epochs: int = 1,
    learning_rate: float = 1e-5,
    per_device_train_batch_size: int = 2,
    gradient_accumulation_steps: int = 8,
    max_seq_length: int = 2048,
    lora_r: int = 16,
    lora_alpha: int = 32,
) -> dict[str, Any]:
    """CPT (stage pt) with LoRA: spec 3.1.3 parameters, 7.2.1 template."""
    return {
        "model_name_or_path": model_name,
        "stage": "pt",
        "do_train": True,
        "dataset": dataset,
        "dataset_dir": "data/llmops",
        "template": "default",
        "finetuning_type": "lora",
        "lora_target": "all",
        "lora_rank": lora_r,
        "lora_alpha": lora_alpha,
        "lora_dropout": 0.05,
        "output_dir": output_dir,
        "overwrite_output_dir": True,
        "num_train_epochs": num_train_epochs,
        "learning_rate": learning_rate,
        "per_device_train_batch_size": per_device_train_batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 100,
        "logging_steps": 10,
        "save_steps": 500,
        "fp16": True,
        "cutoff_len": max_seq_length,
        "plot_loss": True,
    }


def create_sft_config(
    model_name: str = "Qwen/Qwen2-1.5B",
    dataset: str = "sft_data",
    output_dir: str = "checkpoints/sft/sft-lora",
    num_train_epochs: int = 3,
    learning_rate: float = 5e-5,
    template: str = "qwen",
) -> dict[str, Any]:
    """SFT with LoRA: spec 3.2.3 parameters, 7.2.2 template."""
    return {
        "model_name_or_path": model_name,
        "stage": "sft",
        "do_train": True,
        "dataset": dataset,
        "dataset_dir": "data/llmops",
        "template": template,
        "finetuning_type": "lora",
        "lora_target": "all",
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "output_dir": output_dir,
        "overwrite_output_dir": True,
        "num_train_epochs": num_train_epochs,
        "learning_rate": learning_rate,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 4,
        "lr_scheduler_type": "cosine",
        "logging_steps": 10,
        "fp16": True,
        "cutoff_len": 1024,
        "plot_loss": True,
    }


def create_dpo_config(
    model_name: str = "Qwen/Qwen2-1.5B",
    adapter_path: str | None = "checkpoints/sft/sft-lora",
    dataset: str = "prefs",
    output_dir: str = "checkpoints/dpo/dpo-lora",
    num_train_epochs: int = 1,
    learning_rate: float = 5e-6,
    pref_beta: float = 0.1,
) -> dict[str, Any]:
    """DPO with a LoRA: spec 3.3.3 parameters, 7.2.3 template and appendix A (pref_ftx, grad clipping).

    With `adapter_path=None` a new LoRA is trained on `model_name` (a merged chat model), and
    LLaMA-Factory's reference model is `model_name` itself (the policy with its adapter disabled).
    With an adapter, that adapter is resumed and the reference becomes the model *without* it.
    """
    config: dict[str, Any] = {"model_name_or_path": model_name}
    if adapter_path:
        config["adapter_name_or_path"] = adapter_path
    config.update({
        "stage": "dpo",
        "do_train": True,
        "dataset": dataset,
        "dataset_dir": "data/llmops",
        "template": "qwen",
        "finetuning_type": "lora",
        "lora_target": "all",
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "output_dir": output_dir,
        "overwrite_output_dir": True,
        "num_train_epochs": num_train_epochs,
        "learning_rate": learning_rate,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 8,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 100,
        "max_grad_norm": 1.0,
        "pref_beta": pref_beta,
        "pref_loss": "sigmoid",
        "pref_ftx": 0.0,
        "logging_steps": 10,
        "save_steps": 100,
        "fp16": True,
        "cutoff_len": 1024,
        "plot_loss": True,
    })
    return config


@dataclass(frozen=True)
class Validation:
    """A validation split with eval_loss and optional early stopping (spec 9.2.2)."""

    val_size: float = 0.1
    patience: int | None = 3
    eval_steps: int | None = None


def with_validation(config: dict[str, Any], val_size: float = 0.1, patience: int | None = 3,
                    eval_steps: int | None = None) -> dict[str, Any]:
    """Hold out `val_size` of the data, log eval_loss every `eval_steps` and (spec 9.2.2) stop early after
    `patience` evaluations without a lower eval_loss, keeping the best checkpoint. LLaMA-Factory exposes the
    patience (`early_stopping_steps`) but not a min_delta, so any improvement counts."""
    steps = eval_steps or int(config.get("save_steps") or config.get("logging_steps") or 100)
    result = dict(config, val_size=val_size, eval_strategy="steps", eval_steps=steps,
                  per_device_eval_batch_size=int(config.get("per_device_train_batch_size", 1)))
    if patience is not None:
        result.update(early_stopping_steps=patience, load_best_model_at_end=True, metric_for_best_model="eval_loss",
                      save_strategy="steps", save_steps=steps)
    return result


def config_yaml(config: dict[str, Any]) -> str:
    """The YAML text of a config, keys in the order given (pure)."""
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, default_flow_style=False)


def apply_config_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `config` with `key=value` overrides (values parsed as YAML; `key=` removes the key)."""
    result = dict(config)
    for text in overrides:
        path, value = parse_override(text)
        key = ".".join(path)
        if value == "" and text.rstrip().endswith("="):
            result.pop(key, None)
        else:
            result[key] = _number(value)
    return result


def _number(value: Any) -> Any:
    """YAML 1.1 reads `1e-5` as text; LLaMA-Factory wants a number there."""
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def adapt_to_device(config: dict[str, Any], cuda: bool) -> tuple[dict[str, Any], list[str]]:
    """Without CUDA, fp16/bf16 are switched off (they fail or crawl on CPU); returns the config and notes."""
    if cuda:
        return dict(config), []
    result = dict(config)
    notes = []
    for key in ("fp16", "bf16", "pure_bf16"):
        if result.get(key):
            result[key] = False
            notes.append(f"{key} turned off: no CUDA device")
    return result, notes


def _absolute(workspace: Workspace, key: str, value: Any) -> Any:
    """Workspace-relative paths become absolute; hub ids (no such folder) stay as they are."""
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    candidate = workspace.root / value
    return str(candidate) if key == "output_dir" or candidate.exists() else value


@dataclass(frozen=True)
class WrittenConfig:
    path: Path
    config: dict[str, Any]
    notes: list[str]


def place_config(
    workspace: Workspace, config: dict[str, Any], overrides: list[str] | None = None, cuda: bool | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The config as it will run in `workspace`: dataset_dir, absolute paths, overrides, device (no file)."""
    placed = dict(config, dataset_dir=str(workspace.data_dir))
    placed = apply_config_overrides(placed, overrides or [])
    for key in PATH_KEYS:
        if key in placed:
            placed[key] = _absolute(workspace, key, placed[key])
    return adapt_to_device(placed, _cuda_available() if cuda is None else cuda)


def write_config(
    workspace: Workspace, config: dict[str, Any], overrides: list[str] | None = None, cuda: bool | None = None
) -> WrittenConfig:
    """Place the config in the workspace and write it to configs/llmops/<stage>_config_<timestamp>.yaml."""
    placed, notes = place_config(workspace, config, overrides, cuda)
    stage = str(placed.get("stage", ""))
    if stage not in FILE_STAGES:
        raise LLMOpsError(f"config: stage: {stage!r} is not one of {', '.join(FILE_STAGES)}")
    stamp = time.strftime("%Y%m%d_%H%M%S")
    path = workspace.configs_dir / f"{FILE_STAGES[stage]}_config_{stamp}.yaml"
    counter = 1
    while path.exists():
        counter += 1
        path = workspace.configs_dir / f"{FILE_STAGES[stage]}_config_{stamp}_{counter}.yaml"
    write_text_atomic(path, config_yaml(placed))
    return WrittenConfig(path, placed, notes)


def read_config(path: Path) -> dict[str, Any]:
    """A config YAML file as a dict; errors name the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LLMOpsError(f"{path}: cannot read the config: {exc}") from exc
    if not isinstance(raw, dict):
        raise LLMOpsError(f"{path}: expected a mapping of LLaMA-Factory arguments")
    return raw


def validate_config(config: dict[str, Any], source: str = "config") -> None:
    """Check every key and value with LLaMA-Factory's own argument parser (unknown keys, wrong types)."""
    from llamafactory.hparams.parser import _TRAIN_ARGS
    from transformers import HfArgumentParser

    try:
        HfArgumentParser(_TRAIN_ARGS).parse_dict(config, allow_extra_keys=False)
    except (ValueError, TypeError) as exc:
        raise LLMOpsError(f"{source}: rejected by LLaMA-Factory: {exc}") from exc


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())
