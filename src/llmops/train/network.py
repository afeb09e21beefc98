"""Training asked for over the network (UI, API): nothing from the request names code or a path.

A request names a registered dataset of the stage's kind and a model by name (`base`, the settings' base
model, or a registered version with local weights, resolved here), plus whitelisted hyperparameters
(`configs.NETWORK_HYPERPARAMETERS`: the typed stage settings, whose values in the workspace settings are the
defaults). The config is the CLI's (`train.pipeline.plan_stage`): the output folder is derived under
`checkpoints/<stage>/`, the template comes from the settings and `trust_remote_code` is off. Only configs
inside `configs/llmops/` can be started, and only when their output and dataset folders are the workspace's;
a started config runs the CLI's pipeline (train → merge → register).
"""

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmops.data.registry import list_datasets, read_dataset_info
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.settings import TrainSettings
from llmops.train.configs import (
    FILE_STAGES,
    WrittenConfig,
    check_network_hyperparameters,
    check_network_overrides,
    read_config,
    stage_training,
    with_stage_values,
    write_config,
)
from llmops.train.pipeline import StagePlan, make_plan, model_ref, plan_stage, run_plan, training_base
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.train.runs import RunStatus
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


def default_model(workspace: Workspace, stage: str) -> str:
    """The choice of `model_choices` a stage starts from by default: CPT the base model, SFT the newest
    completion version, DPO production (else the newest chat version); the base model when none is there."""
    if stage not in ("sft", "dpo"):
        return BASE_MODEL
    names = {value for _, value in model_choices(workspace)}
    production = registry.aliases(workspace).get("production")
    if stage == "dpo" and production in names:
        return str(production)
    kind = "completion" if stage == "sft" else "chat"
    newest = (v.name for v in reversed(registry.list_versions(workspace)) if v.kind == kind and v.name in names)
    return next(newest, BASE_MODEL)


def model_version(workspace: Workspace, name: str) -> ModelVersion | None:
    """The registered version of a choice of `model_choices` (None: the base model); any other name is refused."""
    if name == BASE_MODEL:
        return None
    if name not in {value for _, value in model_choices(workspace)}:
        raise LLMOpsError(f"model {name!r}: not the base model nor a registered version with local weights")
    return registry.get_version(workspace, name)


def output_dir(workspace: Workspace, stage: str) -> Path:
    """A new folder `checkpoints/<cpt|sft|dpo>/<stage>-<YYYYmmdd-HHMMSS>[_n]` of the workspace."""
    folder = workspace.checkpoints_dir / FILE_STAGES[stage]
    stem = f"{FILE_STAGES[stage]}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, counter = folder / stem, 1
    while path.exists():
        counter += 1
        path = folder / f"{stem}_{counter}"
    return workspace.confine(path, folder)


def default_hyperparameters(workspace: Workspace, stage: str) -> dict[str, Any]:
    """The workspace's typed settings of the stage (`train.cpt`, `train.sft`, `train.dpo`; None: unset)."""
    return stage_training(workspace.settings.train, stage).model_dump()


def network_settings(workspace: Workspace, stage: str, hyperparameters: dict[str, Any],
                     overrides: list[str]) -> TrainSettings:
    """The workspace's train settings with the request's whitelisted, checked values in the stage's section."""
    values = check_network_hyperparameters(stage, hyperparameters)
    values.update(check_network_overrides(stage, overrides))
    return with_stage_values(workspace.settings.train, stage, "hyperparameters", **values)


def write_network_config(workspace: Workspace, stage: str, dataset: str, model: str,
                         hyperparameters: dict[str, Any], overrides: list[str] | None = None,
                         cuda: bool | None = None) -> WrittenConfig:
    """Check a request from the network and write its config to configs/llmops/ (see the module doc), once
    LLaMA-Factory's parser accepts it."""
    if stage not in FILE_STAGES:
        raise LLMOpsError(f"stage {stage!r}: not one of {', '.join(FILE_STAGES)}")
    train = network_settings(workspace, stage, hyperparameters, overrides or [])
    if dataset not in dataset_choices(workspace, stage):
        known = ", ".join(dataset_choices(workspace, stage)) or "none"
        raise LLMOpsError(f"dataset {dataset!r}: not a registered {stage} dataset (registered: {known})")
    plan = plan_stage(workspace, stage, dataset, model_version(workspace, model), train=train,
                      output_dir=str(output_dir(workspace, stage)))
    return write_config(workspace, plan.config, cuda=cuda, validate=True)


def network_plan(workspace: Workspace, path: str) -> tuple[Path, StagePlan]:
    """The plan of a config of configs/llmops/ (relative to it, or absolute inside it), as written by
    `write_network_config`. Refused: any other file, a config with trust_remote_code, an output_dir outside
    checkpoints/, a dataset_dir other than the workspace's data/llmops, or a model that is not a choice."""
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
    stage, model = str(config.get("stage", "")), str(config.get("model_name_or_path", ""))
    if stage not in FILE_STAGES:
        raise LLMOpsError(f"{config_path}: stage: {stage!r} is not one of {', '.join(FILE_STAGES)}")
    return config_path, make_plan(stage, _trained_on(workspace, config_path, model), model,
                                  str(config.get("dataset", "")), config)


def _trained_on(workspace: Workspace, config_path: Path, model: str) -> ModelVersion | None:
    """The choice of `model_choices` whose model a config trains on (None: the base model)."""
    for _, name in model_choices(workspace):
        version = model_version(workspace, name)
        if model == (str(training_base(workspace, version)) if version else
                     model_ref(workspace.settings.train.base_model)):
            return version
    raise LLMOpsError(f"{config_path}: model_name_or_path: {model!r} is not the base model nor a registered "
                      "version with local weights")


def start_network_config(trainer: LLaMAFactoryTrainer, path: str,
                         on_outcome: Callable[[str, str], None] | None = None) -> str:
    """Start a config of configs/llmops/ (`network_plan`) on the CLI's path, `train.pipeline.run_plan`: in a
    worker thread of this process, which starts the `llamafactory-cli train` subprocess (nothing trains
    here), waits for it, merges and registers the version with its lineage. Returns the run id once the
    subprocess runs; `on_outcome(run_id, text)` hears what became of it (registered or why not)."""
    config_path, plan = network_plan(trainer.workspace, path)
    started: queue.SimpleQueue[str | Exception] = queue.SimpleQueue()

    def work() -> None:
        run_id = ""

        def progress(_label: str, status: RunStatus) -> None:
            nonlocal run_id
            if not run_id:
                run_id = status.id
                started.put(run_id)

        try:
            outcome = f"registered {run_plan(trainer.workspace, plan, progress, config_path).name}"
        except Exception as exc:  # reported to the caller, or through on_outcome once the run started
            if not run_id:
                started.put(exc)
                return
            outcome = f"nothing registered: {exc}"
        if on_outcome is not None:
            on_outcome(run_id, outcome)

    threading.Thread(target=work, name=f"llmops-train-{config_path.stem}", daemon=True).start()
    result = started.get()
    if isinstance(result, Exception):
        raise result
    return result


def _folder(workspace: Workspace, config_path: Path, config: dict[str, Any], key: str, folder: Path) -> Path:
    """The config's `key` relative to `folder`; LLMOpsError naming the file and key when it leaves `folder`."""
    try:
        return workspace.confine(str(config.get(key) or ""), folder).relative_to(folder.resolve())
    except LLMOpsError as exc:
        raise LLMOpsError(f"{config_path}: {key}: {exc}") from exc
