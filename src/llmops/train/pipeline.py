"""Stage chaining: CPT → merge → completion vN.0; SFT → merge → chat vN.0; DPO → chat vN.M (a LoRA).

Every stage trains a LoRA with LLaMA-Factory. CPT and SFT adapters are merged (`llamafactory-cli export`)
so the next stage starts from a full model. DPO trains a *new* LoRA on the merged parent chat model and
resumes no adapter, so LLaMA-Factory's reference model (the policy with its adapter disabled, see
`train/trainer_utils.py::create_ref_model`) is exactly the parent chat model. Nothing is registered
unless the run and the merge succeed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.data.registry import data_file, file_sha256, get_dataset, read_dataset_info
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.train.configs import Validation, create_cpt_config, create_dpo_config, create_sft_config, with_validation
from llmops.train.export import merge_adapter
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.train.runs import RunStatus
from llmops.workspace import Workspace

ProgressCallback = Callable[[str, RunStatus], None]


@dataclass(frozen=True)
class StageRun:
    """A finished, successful training run and the config it ran."""

    run: RunStatus
    config_path: str


def dataset_lineage(workspace: Workspace, dataset: str) -> list[dict[str, Any]]:
    """Name and sha256 of each dataset in a comma-separated `dataset` key (registered or in dataset_info.json)."""
    lineage = []
    info = read_dataset_info(workspace)
    for name in (part.strip() for part in dataset.split(",") if part.strip()):
        try:
            record = get_dataset(workspace, name)
            lineage.append({"name": name, "sha256": record.sha256, "version": record.version,
                            "file_name": record.file_name})
            continue
        except LLMOpsError:
            entry = info.get(name)
        if not isinstance(entry, dict) or "file_name" not in entry:
            raise LLMOpsError(f"{workspace.dataset_info_path}: dataset {name!r} is not registered")
        path = data_file(workspace, str(entry["file_name"]))
        if not path.is_file():
            raise LLMOpsError(f"{workspace.dataset_info_path}: {name}: file_name: {path} does not exist")
        lineage.append({"name": name, "sha256": file_sha256(path), "version": None, "file_name": entry["file_name"]})
    return lineage


def run_stage(workspace: Workspace, label: str, config: dict[str, Any], overrides: list[str],
              on_progress: ProgressCallback | None = None, validation: Validation | None = None) -> StageRun:
    """Train one config to the end; a run that does not succeed raises LLMOpsError with its diagnosis."""
    if validation is not None:
        config = with_validation(config, validation.val_size, validation.patience, validation.eval_steps)
    trainer = LLaMAFactoryTrainer(workspace)
    run_id = trainer.start_training(config, overrides)
    try:
        status = trainer.wait(run_id, (lambda s: on_progress(label, s)) if on_progress else None)
    except KeyboardInterrupt:
        trainer.stop_training(run_id)
        raise
    if status.status != "succeeded":
        raise LLMOpsError(f"{label} run {run_id} {status.status}: {status.error}")
    return StageRun(status, status.config_path)


def _merged_path(workspace: Workspace, name: str) -> Path:
    return workspace.models_dir / name


def training_base(workspace: Workspace, version: ModelVersion) -> Path:
    """The full model a child of `version` trains on: its own folder if merged, else models/<name>-merged."""
    return Path(version.path) if version.merged else workspace.models_dir / f"{version.name}-merged"


def _merged_model_of(workspace: Workspace, version: ModelVersion) -> str:
    """`training_base` of `version`, merging its adapter into it the first time."""
    if version.upstream_url and not Path(version.path).exists():
        raise LLMOpsError(f"model {version.name}: served at {version.upstream_url}, no local weights to train on")
    target = training_base(workspace, version)
    if not target.exists():
        merge_adapter(workspace, version.base_model, version.path, target)
    return str(target)


def _model_ref(model: str) -> str:
    """A local model folder as an absolute path; a hub id unchanged."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def train_cpt(workspace: Workspace, dataset: str, base_model: str | None = None, overrides: list[str] | None = None,
              on_progress: ProgressCallback | None = None, validation: Validation | None = None) -> ModelVersion:
    """CPT LoRA on the base, merged into the completion model vN.0."""
    base = _model_ref(base_model or workspace.settings.train.base_model)
    lineage = dataset_lineage(workspace, dataset)
    name = f"completion-{registry.next_version(workspace, 'completion', major=True)}"
    config = create_cpt_config(model_name=base, dataset=dataset, output_dir=f"checkpoints/cpt/{name}")
    stage = run_stage(workspace, "cpt", config, overrides or [], on_progress, validation)
    merged = merge_adapter(workspace, base, stage.run.output_dir, _merged_path(workspace, name))
    return registry.register_version(
        workspace, kind="completion", stage="pt", parent=None, base_model=base, path=str(merged), merged=True,
        datasets=lineage, config_path=stage.config_path, run_id=stage.run.id, metrics=stage.run.metrics,
        version=name.split("-", 1)[1],
    )


def train_sft(workspace: Workspace, dataset: str, parent: str | None = None, overrides: list[str] | None = None,
              on_progress: ProgressCallback | None = None, validation: Validation | None = None) -> ModelVersion:
    """SFT LoRA on a completion version (or the raw base when `parent` is None), merged into chat vN.0."""
    source = registry.resolve(workspace, parent) if parent else None
    base = _merged_model_of(workspace, source) if source else _model_ref(workspace.settings.train.base_model)
    lineage = dataset_lineage(workspace, dataset)
    name = f"chat-{registry.next_version(workspace, 'chat', major=True)}"
    config = create_sft_config(model_name=base, dataset=dataset, output_dir=f"checkpoints/sft/{name}",
                               template=workspace.settings.train.template)
    stage = run_stage(workspace, "sft", config, overrides or [], on_progress, validation)
    merged = merge_adapter(workspace, base, stage.run.output_dir, _merged_path(workspace, name))
    return registry.register_version(
        workspace, kind="chat", stage="sft", parent=source.name if source else None, base_model=base,
        path=str(merged), merged=True, datasets=lineage, config_path=stage.config_path, run_id=stage.run.id,
        metrics=stage.run.metrics, version=name.split("-", 1)[1],
    )


def train_dpo(workspace: Workspace, dataset: str, parent: str, overrides: list[str] | None = None,
              on_progress: ProgressCallback | None = None, validation: Validation | None = None) -> ModelVersion:
    """A new DPO LoRA on the (merged) parent chat model, registered as chat vN.M+1 with parent `parent`.

    `parent` may be a version name or an alias (e.g. production). The reference model is the parent.
    """
    source = registry.resolve(workspace, parent)
    if source.kind != "chat":
        raise LLMOpsError(f"model {source.name}: DPO needs a chat model as parent")
    base = _merged_model_of(workspace, source)
    lineage = dataset_lineage(workspace, dataset)
    name = f"chat-{registry.next_version(workspace, 'chat', major=False)}"
    config = create_dpo_config(model_name=base, adapter_path=None, dataset=dataset,
                               output_dir=f"checkpoints/dpo/{name}")
    config["template"] = workspace.settings.train.template
    stage = run_stage(workspace, "dpo", config, overrides or [], on_progress, validation)
    return registry.register_version(
        workspace, kind="chat", stage="dpo", parent=source.name, base_model=base, path=stage.run.output_dir,
        merged=False, datasets=lineage, config_path=stage.config_path, run_id=stage.run.id,
        metrics=stage.run.metrics, version=name.split("-", 1)[1],
    )


def train_offline(workspace: Workspace, cpt_dataset: str, sft_dataset: str, base_model: str | None = None,
                  cpt_overrides: list[str] | None = None, sft_overrides: list[str] | None = None,
                  on_progress: ProgressCallback | None = None,
                  validation: Validation | None = None) -> tuple[ModelVersion, ModelVersion]:
    """The offline pipeline: CPT → merge → completion vN.0, then SFT on it → merge → chat vN.0."""
    completion = train_cpt(workspace, cpt_dataset, base_model, cpt_overrides, on_progress, validation)
    chat = train_sft(workspace, sft_dataset, completion.name, sft_overrides, on_progress, validation)
    return completion, chat
