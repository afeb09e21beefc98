"""Training asked for over the network (UI, API): nothing from the request names code or a path.

A request names a registered dataset of the stage's kind and a model by name (`base`, the settings' base
model, or a registered version with local weights, resolved here), plus whitelisted hyperparameters
(`configs.NETWORK_HYPERPARAMETERS`). The output folder is derived under `checkpoints/<stage>/`, the template
comes from the settings and `trust_remote_code` is always off. Only configs inside `configs/llmops/` can be
started, and only when their output and dataset folders are the workspace's.
"""

import time
from pathlib import Path
from typing import Any

from llmops.data.registry import list_datasets, read_dataset_info
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.train.configs import (
    FILE_STAGES,
    WrittenConfig,
    check_network_hyperparameters,
    check_network_overrides,
    create_cpt_config,
    create_dpo_config,
    create_sft_config,
    network_hyperparameters,
    read_config,
    write_config,
)
from llmops.train.pipeline import training_base
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.workspace import Workspace

BASE_MODEL = "base"
CONFIG_SUFFIXES = (".yaml", ".yml")


def dataset_choices(workspace: Workspace, stage: str) -> list[str]:
    """Registered datasets of `stage` (pt | sft | dpo) that LLaMA-Factory can read, newest first."""
    info = read_dataset_info(workspace)
    return [d.name for d in reversed(list_datasets(workspace)) if d.kind == stage and d.name in info]


def model_choices(workspace: Workspace) -> list[tuple[str, str]]:
    """(label, name) of the models to train on: the settings' base model, then registered versions whose
    full weights are on this machine, newest first."""
    choices = [(f"base model ({workspace.settings.train.base_model})", BASE_MODEL)]
    for version in reversed(registry.list_versions(workspace)):
        if training_base(workspace, version).is_dir():
            choices.append((f"{version.name} ({version.stage})", version.name))
    return choices


def model_path(workspace: Workspace, name: str) -> str:
    """The model folder (or hub id) of a choice of `model_choices`; any other name is refused."""
    if name == BASE_MODEL:
        return workspace.settings.train.base_model
    if name not in {value for _, value in model_choices(workspace)}:
        raise LLMOpsError(f"model {name!r}: not the base model nor a registered version with local weights")
    return str(training_base(workspace, registry.get_version(workspace, name)))


def output_dir(workspace: Workspace, stage: str) -> Path:
    """A new folder `checkpoints/<cpt|sft|dpo>/<stage>-<YYYYmmdd-HHMMSS>[_n]` of the workspace."""
    folder = workspace.checkpoints_dir / FILE_STAGES[stage]
    stem = f"{FILE_STAGES[stage]}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, counter = folder / stem, 1
    while path.exists():
        counter += 1
        path = folder / f"{stem}_{counter}"
    return workspace.confine(path, folder)


def _stage_config(stage: str, model: str, dataset: str, output: str) -> dict[str, Any]:
    if stage == "pt":
        return create_cpt_config(model_name=model, dataset=dataset, output_dir=output)
    if stage == "sft":
        return create_sft_config(model_name=model, dataset=dataset, output_dir=output)
    return create_dpo_config(model_name=model, adapter_path=None, dataset=dataset, output_dir=output)


def default_hyperparameters(stage: str) -> dict[str, Any]:
    """The builder's values of the stage's whitelisted keys (None where the builder sets none)."""
    config = _stage_config(stage, "", "", "")
    return {key: config.get(key) for key in network_hyperparameters(stage)}


def write_network_config(workspace: Workspace, stage: str, dataset: str, model: str,
                         hyperparameters: dict[str, Any], overrides: list[str] | None = None,
                         cuda: bool | None = None) -> WrittenConfig:
    """Check a request from the network and write its config to configs/llmops/ (see the module doc)."""
    if stage not in FILE_STAGES:
        raise LLMOpsError(f"stage {stage!r}: not one of {', '.join(FILE_STAGES)}")
    values = check_network_hyperparameters(stage, hyperparameters)
    values.update(check_network_overrides(stage, overrides or []))
    if dataset not in dataset_choices(workspace, stage):
        known = ", ".join(dataset_choices(workspace, stage)) or "none"
        raise LLMOpsError(f"dataset {dataset!r}: not a registered {stage} dataset (registered: {known})")
    config = _stage_config(stage, model_path(workspace, model), dataset, str(output_dir(workspace, stage)))
    config.update(values, template=workspace.settings.train.template, trust_remote_code=False)
    return write_config(workspace, config, cuda=cuda)


def start_network_config(trainer: LLaMAFactoryTrainer, path: str) -> str:
    """Start a config of configs/llmops/ (relative to it, or absolute inside it); returns the run id.

    Refused: any other file, a config with trust_remote_code, an output_dir outside checkpoints/ or a
    dataset_dir other than the workspace's data/llmops."""
    workspace = trainer.workspace
    if not path.strip():
        raise LLMOpsError("config: generate a config first")
    config_path = workspace.confine(path.strip(), workspace.configs_dir)
    if config_path.suffix not in CONFIG_SUFFIXES or not config_path.is_file():
        raise LLMOpsError(f"{path}: not a config file (.yaml) in {workspace.configs_dir}")
    config = read_config(config_path)
    if config.get("trust_remote_code"):
        raise LLMOpsError(f"{config_path}: trust_remote_code: refused from the UI or API (start it with the CLI)")
    if _folder(workspace, config_path, config, "output_dir", workspace.checkpoints_dir) == Path("."):
        raise LLMOpsError(f"{config_path}: output_dir: must be a folder inside {workspace.checkpoints_dir}")
    if _folder(workspace, config_path, config, "dataset_dir", workspace.data_dir) != Path("."):
        raise LLMOpsError(f"{config_path}: dataset_dir: must be {workspace.data_dir}")
    return trainer.start_training(config_path)


def _folder(workspace: Workspace, config_path: Path, config: dict[str, Any], key: str, folder: Path) -> Path:
    """The config's `key` relative to `folder`; LLMOpsError naming the file and key when it leaves `folder`."""
    try:
        return workspace.confine(str(config.get(key) or ""), folder).relative_to(folder.resolve())
    except LLMOpsError as exc:
        raise LLMOpsError(f"{config_path}: {key}: {exc}") from exc
