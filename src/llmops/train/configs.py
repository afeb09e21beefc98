"""LLaMA-Factory training configs for CPT, SFT and DPO (spec 3.1.3, 3.2.3, 3.3.3, 7.2.x, appendix A).

`stage_config` is the one builder: it renders a stage's config from the typed settings of the stage
(`train.cpt`, `train.sft`, `train.dpo`, whose defaults are the spec's) and the template of `train.template`,
with `key=value` overrides on top (a typed key is checked like the settings, any other is a LLaMA-Factory
key). The CLI, the UI, the loop and the demo all build their configs with it (through `train.pipeline`);
`create_*_config` are the spec's builders on top of it. `config_yaml` turns a config into YAML (a pure
function, tested against golden files); `write_config` places a config in a workspace: dataset_dir is the
workspace's data/llmops, relative output paths land in the workspace, fp16/bf16 are switched off without
CUDA, and the YAML goes to `configs/llmops/<stage>_config_<YYYYmmdd_HHMMSS>.yaml`. `validate_config` runs
LLaMA-Factory's own argument parser on a config; every run is checked by it before it starts.

From the network (UI, API) only the keys of `NETWORK_HYPERPARAMETERS`, the typed stage settings, may be set
(`check_network_overrides`); the CLI accepts any key.

Multi-GPU and DeepSpeed are LLaMA-Factory's job: set `deepspeed=<ds_config.json>` as an override and
FORCE_TORCHRUN=1 (plus NNODES, NPROC_PER_NODE …) in the environment; both are passed through unchanged.
"""
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic.fields import FieldInfo

from llmops.errors import LLMOpsError
from llmops.fileio import read_text_file, write_text_atomic
from llmops.settings import CPTTraining, DPOTraining, SFTTraining, StageTraining, TrainSettings, parse_override, updated
from llmops.workspace import Workspace

FILE_STAGES = {"pt": "cpt", "sft": "sft", "dpo": "dpo", "kto": "kto"}
SECTIONS = {"pt": "cpt", "sft": "sft", "dpo": "dpo", "kto": "dpo"}  # KTO trains with train.dpo's settings
PATH_KEYS = ("output_dir", "model_name_or_path", "adapter_name_or_path", "ref_model", "deepspeed")


STAGE_TRAINING: dict[str, type[StageTraining]] = {"pt": CPTTraining, "sft": SFTTraining, "dpo": DPOTraining,
                                                   "kto": DPOTraining}
CPT_TEMPLATE = "default"  # CPT reads plain text: no chat turns to format (spec 7.2.1)
_LORA_KEYS = ("lora_target", "lora_rank", "lora_alpha", "lora_dropout")
_LOGGING_KEYS = ("logging_steps", "save_steps", "seed")


@dataclass(frozen=True)
class Hyperparameter:
    """A key the network (UI, API) may set: a typed stage setting's type, lowest value, allowed words or
    pattern, description and stages."""

    type: type[int] | type[float] | type[str]
    minimum: float = 0
    choices: tuple[str, ...] = ()
    pattern: str = ""
    description: str = ""
    stages: tuple[str, ...] = tuple(FILE_STAGES)


def _hyperparameter(info: FieldInfo, stages: tuple[str, ...]) -> Hyperparameter:
    """The network's view of one typed field (`int | None` is an int that may be left unset)."""
    kinds = [kind for kind in get_args(info.annotation) if kind is not type(None)]
    kind = kinds[0] if get_origin(info.annotation) in (Union, UnionType) else info.annotation
    choices = tuple(str(word) for word in get_args(kind)) if get_origin(kind) is Literal else ()
    minimum = next((float(bound) for item in info.metadata for bound in (getattr(item, "ge", None),
                                                                         getattr(item, "gt", None))
                    if bound is not None), 0.0)
    pattern = next((str(item.pattern) for item in info.metadata if getattr(item, "pattern", None)), "")
    number: type[int] | type[float] | type[str] = kind if kind in (int, float) else str
    return Hyperparameter(number, minimum, choices, pattern, info.description or "", stages)


def _network_whitelist() -> dict[str, Hyperparameter]:
    """Every field of the typed stage settings (`train.cpt`, `train.sft`, `train.dpo`), with its stages."""
    stages: dict[str, list[str]] = {}
    fields: dict[str, FieldInfo] = {}
    for stage, section in STAGE_TRAINING.items():
        for name, info in section.model_fields.items():
            stages.setdefault(name, []).append(stage)
            fields.setdefault(name, info)
    return {name: _hyperparameter(info, tuple(stages[name])) for name, info in fields.items()}


# The only keys a config written from the network may set: the typed stage settings, nothing else. Paths, code
# and output folders are never here (an operator sets them in the workspace settings or on the CLI, where any
# key is accepted).
NETWORK_HYPERPARAMETERS: dict[str, Hyperparameter] = _network_whitelist()


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
        valid = text in spec.choices if spec.choices else bool(spec.pattern and re.fullmatch(spec.pattern, text))
        if not valid:
            expected = " | ".join(spec.choices) or spec.description
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


def stage_training(train: TrainSettings, stage: str) -> StageTraining:
    """The typed hyperparameters of `stage` (pt | sft | dpo | kto): `train.cpt`, `train.sft` or `train.dpo`."""
    if stage not in STAGE_TRAINING:
        raise LLMOpsError(f"stage {stage!r}: not one of {', '.join(STAGE_TRAINING)}")
    section: StageTraining = getattr(train, SECTIONS[stage])
    return section


def typed_overrides(section: StageTraining, overrides: Sequence[str],
                    source: str = "override") -> tuple[StageTraining, list[str]]:
    """`section` with the overrides of its own keys, checked like the settings file (errors name `source` and
    the key), and the other overrides, LLaMA-Factory keys (`key=` removes a key from the config)."""
    typed: dict[str, Any] = {}
    rest: list[str] = []
    for text in overrides:
        path, value = parse_override(text)
        key = ".".join(path)
        if key in type(section).model_fields and value != "":
            typed[key] = _number(value)
        else:
            rest.append(text)
    return updated(section, source, **typed), rest


def stage_config(stage: str, train: TrainSettings, dataset: str, model: str, output_dir: str,
                 overrides: Sequence[str] = (), validation: Validation | None = None,
                 adapter: str | None = None, kto_weights: tuple[float, float] = (1.0, 1.0)) -> dict[str, Any]:
    """The LLaMA-Factory config of `stage` (pt | sft | dpo | kto) training `model` on `dataset` into `output_dir`,
    from the stage's typed settings with `overrides` on top (see the module doc). A full fine-tune has no LoRA
    keys; an unset setting is left out; `adapter` resumes a LoRA adapter (the spec's DPO, not the pipeline's).
    KTO is DPO's settings less `pref_loss`, plus `kto_weights` (kto_chosen_weight, kto_rejected_weight)."""
    section, rest = typed_overrides(stage_training(train, stage), overrides)
    values = {key: value for key, value in section.model_dump().items() if value is not None}
    if stage == "kto":
        values.pop("pref_loss")
        values.update(kto_chosen_weight=kto_weights[0], kto_rejected_weight=kto_weights[1])
    if not values.get("max_steps"):
        values.pop("max_steps", None)
    finetuning = values.pop("finetuning_type")
    lora = {key: values.pop(key) for key in _LORA_KEYS}
    logging = {key: values.pop(key) for key in _LOGGING_KEYS if key in values}
    cutoff_len = values.pop("cutoff_len")
    config: dict[str, Any] = {"model_name_or_path": model}
    if adapter:
        config["adapter_name_or_path"] = adapter
    config.update(stage=stage, do_train=True, dataset=dataset, dataset_dir="data/llmops",
                  template=CPT_TEMPLATE if stage == "pt" else train.template, finetuning_type=finetuning)
    if finetuning == "lora":
        config.update(lora)
    config.update(output_dir=output_dir, overwrite_output_dir=True, **values, **logging, fp16=True,
                  cutoff_len=cutoff_len, plot_loss=True, trust_remote_code=False)
    if validation is not None:
        config = with_validation(config, validation.val_size, validation.patience, validation.eval_steps)
    return apply_config_overrides(config, rest)


def with_stage_values(train: TrainSettings, stage: str, source: str, **values: Any) -> TrainSettings:
    """`train` with `values` in the stage's typed section, checked like the settings (errors name `source`)."""
    section = updated(stage_training(train, stage), source, **values)
    return updated(train, source, **{SECTIONS[stage]: section})


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
    """CPT (stage pt) with LoRA: spec 3.1.3's builder (`stage_config` with these settings)."""
    train = with_stage_values(TrainSettings(), "pt", "config", num_train_epochs=num_train_epochs,
                              learning_rate=learning_rate, per_device_train_batch_size=per_device_train_batch_size,
                              gradient_accumulation_steps=gradient_accumulation_steps, cutoff_len=max_seq_length,
                              lora_rank=lora_r, lora_alpha=lora_alpha)
    return stage_config("pt", train, dataset, model_name, output_dir)


def create_sft_config(
    model_name: str = "Qwen/Qwen2-1.5B",
    dataset: str = "sft_data",
    output_dir: str = "checkpoints/sft/sft-lora",
    num_train_epochs: int = 3,
    learning_rate: float = 5e-5,
    template: str = "qwen",
) -> dict[str, Any]:
    """SFT with LoRA: spec 3.2.3's builder (`stage_config` with these settings)."""
    train = with_stage_values(TrainSettings(template=template), "sft", "config", num_train_epochs=num_train_epochs,
                              learning_rate=learning_rate)
    return stage_config("sft", train, dataset, model_name, output_dir)


def create_dpo_config(
    model_name: str = "Qwen/Qwen2-1.5B",
    adapter_path: str | None = None,
    dataset: str = "prefs",
    output_dir: str = "checkpoints/dpo/dpo-lora",
    num_train_epochs: int = 1,
    learning_rate: float = 5e-6,
    pref_beta: float = 0.1,
) -> dict[str, Any]:
    """DPO with a LoRA: spec 3.3.3's builder (`stage_config` with these settings).

    Without `adapter_path` a new LoRA is trained on `model_name` (a merged chat model), and LLaMA-Factory's
    reference model is `model_name` itself (the policy with its adapter disabled). With an adapter, that
    adapter is resumed and the reference becomes the model *without* it.
    """
    train = with_stage_values(TrainSettings(), "dpo", "config", num_train_epochs=num_train_epochs,
                              learning_rate=learning_rate, pref_beta=pref_beta)
    return stage_config("dpo", train, dataset, model_name, output_dir, adapter=adapter_path)


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
    workspace: Workspace, config: dict[str, Any], overrides: list[str] | None = None, cuda: bool | None = None,
    validate: bool = False,
) -> WrittenConfig:
    """Place the config in the workspace and write it to configs/llmops/<stage>_config_<timestamp>.yaml;
    with `validate`, only once LLaMA-Factory's parser accepts it (`validate_config`)."""
    placed, notes = place_config(workspace, config, overrides, cuda)
    stage = str(placed.get("stage", ""))
    if stage not in FILE_STAGES:
        raise LLMOpsError(f"config: stage: {stage!r} is not one of {', '.join(FILE_STAGES)}")
    if validate:
        validate_config(placed, f"{FILE_STAGES[stage]} config")
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
    """Check a config with LLaMA-Factory's own argument parser, the one `llamafactory-cli train` runs first:
    unknown keys (named), and the checks of its argument classes (e.g. a missing model, a DeepSpeed file
    without DeepSpeed). Not `get_train_args`: its further checks are about the launch (more than one GPU or
    DeepSpeed need torchrun, which llamafactory-cli starts) and it reseeds the calling process's RNGs.
    Cost: the first call imports LLaMA-Factory's arguments (~2.5 s beside torch), then ~5 ms a config."""
    from llamafactory.hparams.parser import _parse_train_args

    try:
        _parse_train_args(dict(config))
    except (ValueError, TypeError, ImportError) as exc:
        raise LLMOpsError(f"{source}: rejected by LLaMA-Factory: {exc}") from exc


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())
