"""LLaMA-Factory training configs for CPT, SFT and DPO (spec 3.1.3, 3.2.3, 3.3.3, 7.2.x, appendix A).

The three builders return plain dicts with the spec's defaults; `config_yaml` turns one into YAML (a pure
function, tested against golden files); `write_config` places a config in a workspace: dataset_dir is the
workspace's data/llmops, relative output paths land in the workspace, `key=value` overrides of any
LLaMA-Factory key are applied, fp16/bf16 are switched off without CUDA, and the YAML goes to
`configs/llmops/<stage>_config_<YYYYmmdd_HHMMSS>.yaml`.

From the network (UI, API) only the keys of `NETWORK_HYPERPARAMETERS` may be set (`check_network_overrides`);
the CLI accepts any key.

Multi-GPU and DeepSpeed are LLaMA-Factory's job: set `deepspeed=<ds_config.json>` as an override and
FORCE_TORCHRUN=1 (plus NNODES, NPROC_PER_NODE …) in the environment; both are passed through unchanged.
"""

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops.errors import LLMOpsError
from llmops.fileio import read_text_file, write_text_atomic
from llmops.settings import parse_override
from llmops.workspace import Workspace

FILE_STAGES = {"pt": "cpt", "sft": "sft", "dpo": "dpo"}
PATH_KEYS = ("output_dir", "model_name_or_path", "adapter_name_or_path", "ref_model", "deepspeed")


@dataclass(frozen=True)
class Hyperparameter:
    """A LLaMA-Factory key the network (UI, API) may set: its type, lowest value, allowed words and stages."""

    type: type[int] | type[float] | type[str]
    minimum: float = 0
    choices: tuple[str, ...] = ()
    stages: tuple[str, ...] = tuple(FILE_STAGES)


# The only keys a config written from the network may set; paths, code and output folders are never here
# (an operator sets them in the workspace settings or on the CLI, where any key is accepted).
NETWORK_HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "learning_rate": Hyperparameter(float),
    "num_train_epochs": Hyperparameter(int, 1),
    "max_steps": Hyperparameter(int, -1),
    "per_device_train_batch_size": Hyperparameter(int, 1),
    "gradient_accumulation_steps": Hyperparameter(int, 1),
    "cutoff_len": Hyperparameter(int, 1),
    "lora_rank": Hyperparameter(int, 1),
    "lora_alpha": Hyperparameter(int, 1),
    "lora_dropout": Hyperparameter(float),
    "lora_target": Hyperparameter(str),
    "lr_scheduler_type": Hyperparameter(str, choices=("linear", "cosine", "cosine_with_restarts", "polynomial",
                                                      "constant", "constant_with_warmup")),
    "warmup_steps": Hyperparameter(int),
    "warmup_ratio": Hyperparameter(float),
    "max_grad_norm": Hyperparameter(float),
    "weight_decay": Hyperparameter(float),
    "logging_steps": Hyperparameter(int, 1),
    "save_steps": Hyperparameter(int, 1),
    "seed": Hyperparameter(int),
    "pref_beta": Hyperparameter(float, stages=("dpo",)),
    "pref_loss": Hyperparameter(str, choices=("sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"),
                                stages=("dpo",)),
    "pref_ftx": Hyperparameter(float, stages=("dpo",)),
}
_LORA_TARGET = re.compile(r"^[A-Za-z0-9_.]+(,[A-Za-z0-9_.]+)*$")


def network_hyperparameters(stage: str) -> dict[str, Hyperparameter]:
    """The whitelisted hyperparameters of a stage (pt | sft | dpo), in the whitelist's order."""
    return {key: spec for key, spec in NETWORK_HYPERPARAMETERS.items() if stage in spec.stages}


def check_network_value(stage: str, key: str, value: Any) -> int | float | str:
    """`value` of `key` as its whitelisted type; LLMOpsError naming the key for any other key or a bad value."""
    spec = network_hyperparameters(stage).get(key)
    if spec is None:
        allowed = ", ".join(network_hyperparameters(stage))
        raise LLMOpsError(f"{key}: cannot be set from the UI or API (allowed for {stage}: {allowed}); "
                          "an operator sets it in the workspace settings or on the CLI")
    if spec.type is str:
        text = str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
        valid = text in spec.choices if spec.choices else bool(_LORA_TARGET.match(text))
        if not valid:
            expected = " | ".join(spec.choices) or "module names separated by commas, or all"
            raise LLMOpsError(f"{key}: {value!r} is not allowed (expected {expected})")
        return text
    number = _number(value)
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise LLMOpsError(f"{key}: {value!r} is not a finite number")
    if spec.type is int and number != int(number):
        raise LLMOpsError(f"{key}: {value!r} is not a whole number")
    if number < spec.minimum:
        raise LLMOpsError(f"{key}: {value!r} is below {spec.minimum:g}")
    return int(number) if spec.type is int else float(number)


def check_network_hyperparameters(stage: str, values: dict[str, Any]) -> dict[str, int | float | str]:
    """The checked values of whitelisted keys (a None value, an empty field, is left out)."""
    return {key: check_network_value(stage, key, value) for key, value in values.items()
            if value is not None and value != ""}


def check_network_overrides(stage: str, overrides: list[str]) -> dict[str, int | float | str]:
    """`key=value` overrides typed in the UI or sent to the API: whitelisted keys with checked values only;
    `trust_remote_code`, `output_dir`, `deepspeed`, paths and unknown keys are refused by name."""
    values: dict[str, int | float | str] = {}
    for text in overrides:
        path, value = parse_override(text)
        key = ".".join(path)
        values[key] = check_network_value(stage, key, value)
    return values


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
    text = read_text_file(path, what="config file")
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
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
