"""Stage chaining: CPT → merge → completion vN.0; SFT → merge → chat vN.0; DPO or KTO → chat vN.M (a LoRA).

One path for the CLI, the UI, the loop and the demo: `plan_stage` renders the stage's config from the typed
settings (`train.cpt`, `train.sft`, `train.dpo`, with `key=value` overrides on top) and `run_plan` trains it,
merges and registers the result with its lineage. By default every stage trains a LoRA with LLaMA-Factory;
CPT and SFT adapters are merged (`llamafactory-cli export`) so the next stage starts from a full model
(`finetuning_type: full` trains the full model directly). DPO trains a *new* LoRA on the merged parent chat
model and resumes no adapter, so LLaMA-Factory's reference model (the policy with its adapter disabled, see
`train/trainer_utils.py::create_ref_model`) is exactly the parent chat model. KTO is trained the same way
(same reference), its class weights set from the dataset's desirable/undesirable balance (`train.objectives`).
Nothing is registered unless the run and the merge succeed.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.data.kto import tag_counts
from llmops.data.registry import (
    DatasetRecord,
    data_file,
    dataset_path,
    file_sha256,
    get_dataset,
    read_dataset_info,
)
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.models.registry import PREFERENCE_STAGES, ModelVersion
from llmops.settings import TrainSettings
from llmops.train.configs import FILE_STAGES, Validation, stage_config
from llmops.train.export import merge_adapter
from llmops.train.objectives import kto_weights
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.train.runs import RunStatus
from llmops.workspace import Workspace

ProgressCallback = Callable[[str, RunStatus], None]


@dataclass(frozen=True)
class StageRun:
    """A finished, successful training run and the config it ran."""

    run: RunStatus
    config_path: str


def _registered(workspace: Workspace, dataset: str) -> list[tuple[str, DatasetRecord | None]]:
    """Each name of a comma-separated `dataset` key with its registry record (None: not registered)."""
    named: list[tuple[str, DatasetRecord | None]] = []
    for name in (part.strip() for part in dataset.split(",") if part.strip()):
        try:
            named.append((name, get_dataset(workspace, name)))
        except LLMOpsError:
            named.append((name, None))
    return named


def dataset_lineage(workspace: Workspace, dataset: str, stage: str) -> list[dict[str, Any]]:
    """Name and sha256 of each dataset in a comma-separated `dataset` key (registered, and then of the kind `stage`
    trains on: pt, sft, dpo or kto; or in dataset_info.json)."""
    lineage = []
    info = read_dataset_info(workspace)
    for name, record in _registered(workspace, dataset):
        if record is not None and record.kind != stage:
            raise LLMOpsError(f"dataset {name!r} is of kind {record.kind}: the {stage} stage trains on {stage} "
                              "datasets (see `llmops data list`)")
        if record is not None:
            lineage.append({"name": name, "sha256": record.sha256, "version": record.version,
                            "file_name": record.file_name})
            continue
        entry = info.get(name)
        if not isinstance(entry, dict) or "file_name" not in entry:
            raise LLMOpsError(f"{workspace.dataset_info_path}: dataset {name!r} is not registered")
        path = data_file(workspace, str(entry["file_name"]))
        if not path.is_file():
            raise LLMOpsError(f"{workspace.dataset_info_path}: {name}: file_name: {path} does not exist")
        lineage.append({"name": name, "sha256": file_sha256(path), "version": None, "file_name": entry["file_name"]})
    return lineage


def run_stage(workspace: Workspace, label: str, config: dict[str, Any] | Path,
              on_progress: ProgressCallback | None = None) -> StageRun:
    """Train one config (a dict, or a file run as it is) to the end; a run that does not succeed raises
    LLMOpsError with its diagnosis. The config passes LLaMA-Factory's parser before anything starts."""
    trainer = LLaMAFactoryTrainer(workspace)
    run_id = trainer.start_training(config)
    try:
        status = trainer.wait(run_id, (lambda s: on_progress(label, s)) if on_progress else None)
    except KeyboardInterrupt:
        trainer.stop_training(run_id)
        raise
    if status.status != "succeeded":
        raise LLMOpsError(f"{label} run {run_id} {status.status}: {status.error}")
    return StageRun(status, status.config_path)


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


def model_ref(model: str) -> str:
    """A local model folder as an absolute path; a hub id unchanged."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


@dataclass(frozen=True)
class StagePlan:
    """A stage's run before it starts: the model it trains on, its parent version, dataset and config."""

    stage: str  # pt | sft | dpo
    parent: ModelVersion | None
    base: str
    dataset: str
    config: dict[str, Any]

    @property
    def kind(self) -> str:
        return "completion" if self.stage == "pt" else "chat"


def _next_name(workspace: Workspace, stage: str, parent: ModelVersion | None) -> str:
    """The version a stage registers next: completion|chat vN+1.0 for CPT and SFT, chat vN.M+1 for DPO and KTO
    (N the parent's major)."""
    kind = "completion" if stage == "pt" else "chat"
    version = registry.next_version(workspace, kind, major=stage not in PREFERENCE_STAGES,
                                    parent=parent.name if parent else None)
    return f"{kind}-{version}"


def plan_stage(workspace: Workspace, stage: str, dataset: str, parent: ModelVersion | None = None,
               base_model: str | None = None, overrides: Sequence[str] = (), validation: Validation | None = None,
               train: TrainSettings | None = None, output_dir: str | None = None) -> StagePlan:
    """What `stage` trains: on `parent`'s full model (else `base_model`, else train.base_model), rendered by
    `stage_config` from `train` (default: the workspace's typed settings) with `overrides` on top, into
    `output_dir` (default: checkpoints/<cpt|sft|dpo>/<the next version>). DPO needs a chat parent."""
    base = str(training_base(workspace, parent)) if parent else model_ref(
        base_model or workspace.settings.train.base_model)
    output = output_dir or f"checkpoints/{FILE_STAGES[stage]}/{_next_name(workspace, stage, parent)}"
    dataset_lineage(workspace, dataset, stage)  # registered, and of the stage's kind, before any config
    weights = (1.0, 1.0)
    if stage == "kto":  # the class weights balance the dataset's desirable and undesirable examples
        weights = kto_weights(*tag_counts(dataset_path(workspace, dataset), workspace.settings.data.max_file_bytes))
    config = stage_config(stage, train or workspace.settings.train, dataset, base, output, overrides, validation,
                          kto_weights=weights)
    return make_plan(stage, parent, base, dataset, config)


def make_plan(stage: str, parent: ModelVersion | None, base: str, dataset: str,
              config: dict[str, Any]) -> StagePlan:
    """A stage's plan; refused for DPO or KTO without a chat parent (the parent is their reference model)."""
    if stage in PREFERENCE_STAGES and (parent is None or parent.kind != "chat"):
        raise LLMOpsError(f"model {parent.name if parent else 'base'}: {stage.upper()} needs a chat model as parent")
    return StagePlan(stage, parent, base, dataset, config)


def run_plan(workspace: Workspace, plan: StagePlan, on_progress: ProgressCallback | None = None,
             config_path: Path | None = None) -> ModelVersion:
    """Train a plan (its config, or `config_path` holding it) and register the result with its lineage:
    a LoRA of CPT or SFT merged into models/<name>, a DPO or KTO LoRA as an adapter, a full fine-tune as it is."""
    if plan.parent is not None:
        _merged_model_of(workspace, plan.parent)
    lineage = dataset_lineage(workspace, plan.dataset, plan.stage)
    stage = run_stage(workspace, FILE_STAGES[plan.stage], config_path or plan.config, on_progress)
    name = _next_name(workspace, plan.stage, plan.parent)
    path, merged = stage.run.output_dir, plan.config.get("finetuning_type") == "full"
    if not merged and plan.stage not in PREFERENCE_STAGES:
        path, merged = str(merge_adapter(workspace, plan.base, stage.run.output_dir, workspace.models_dir / name)), True
    return registry.register_version(
        workspace, kind=plan.kind, stage=plan.stage, parent=plan.parent.name if plan.parent else None,
        base_model=plan.base, path=path, merged=merged, datasets=lineage, config_path=stage.config_path,
        run_id=stage.run.id, metrics=stage.run.metrics, version=name.split("-", 1)[1],
    )


def train_cpt(workspace: Workspace, dataset: str, base_model: str | None = None, overrides: list[str] | None = None,
              on_progress: ProgressCallback | None = None, validation: Validation | None = None) -> ModelVersion:
    """CPT on the base (a LoRA merged into it, or a full fine-tune): completion vN.0."""
    plan = plan_stage(workspace, "pt", dataset, None, base_model, overrides or [], validation)
    return run_plan(workspace, plan, on_progress)


def train_sft(workspace: Workspace, dataset: str, parent: str | None = None, overrides: list[str] | None = None,
              on_progress: ProgressCallback | None = None, validation: Validation | None = None) -> ModelVersion:
    """SFT on a completion version (or the raw base when `parent` is None): chat vN.0."""
    source = registry.resolve(workspace, parent) if parent else None
    plan = plan_stage(workspace, "sft", dataset, source, None, overrides or [], validation)
    return run_plan(workspace, plan, on_progress)


def train_dpo(workspace: Workspace, dataset: str, parent: str, overrides: list[str] | None = None,
              on_progress: ProgressCallback | None = None, validation: Validation | None = None) -> ModelVersion:
    """A new DPO LoRA on the (merged) parent chat model, registered as chat vN.M+1 with parent `parent`.

    `parent` may be a version name or an alias (e.g. production). The reference model is the parent.
    """
    return _train_online(workspace, "dpo", dataset, parent, overrides, on_progress, validation)


def train_kto(workspace: Workspace, dataset: str, parent: str, overrides: list[str] | None = None,
              on_progress: ProgressCallback | None = None, validation: Validation | None = None) -> ModelVersion:
    """A new KTO LoRA on the (merged) parent chat model on a registered KTO dataset (`data.kto.export_kto`),
    registered as chat vN.M+1; the reference model is the parent, as for DPO."""
    return _train_online(workspace, "kto", dataset, parent, overrides, on_progress, validation)


def _train_online(workspace: Workspace, stage: str, dataset: str, parent: str, overrides: list[str] | None,
                  on_progress: ProgressCallback | None, validation: Validation | None) -> ModelVersion:
    """A preference stage (dpo | kto) on the resolved parent: planned, run, registered."""
    plan = plan_stage(workspace, stage, dataset, registry.resolve(workspace, parent), None, overrides or [],
                      validation)
    return run_plan(workspace, plan, on_progress)


def train_offline(workspace: Workspace, cpt_dataset: str, sft_dataset: str, base_model: str | None = None,
                  cpt_overrides: list[str] | None = None, sft_overrides: list[str] | None = None,
                  on_progress: ProgressCallback | None = None,
                  validation: Validation | None = None) -> tuple[ModelVersion, ModelVersion]:
    """The offline pipeline: CPT → merge → completion vN.0, then SFT on it → merge → chat vN.0."""
    completion = train_cpt(workspace, cpt_dataset, base_model, cpt_overrides, on_progress, validation)
    chat = train_sft(workspace, sft_dataset, completion.name, sft_overrides, on_progress, validation)
    return completion, chat
