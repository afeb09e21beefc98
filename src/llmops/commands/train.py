"""`llmops train …`: Training: LLaMA-Factory CPT → SFT → DPO runs."""

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmops.commands.common import (
    JsonOption,
    SetOption,
    WorkspaceOption,
    console,
    count_text,
    loss_text,
    names_table,
    print_json,
    workspace_from,
)
from llmops.data.registry import latest_dataset
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.train import configs, pipeline
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.train.runs import RunStatus
from llmops.workspace import Workspace

app = typer.Typer(help="Training: LLaMA-Factory CPT → SFT → DPO runs.", no_args_is_help=True)

OverridesArg = Annotated[list[str] | None, typer.Argument(help="LLaMA-Factory overrides key=value (any key).")]
ConfigOnly = Annotated[bool, typer.Option("--config-only", help="Write and check the config, do not train.")]
RunArg = Annotated[str, typer.Argument(help="Run id (see `llmops train status`).")]
ValSize = Annotated[float, typer.Option("--val-size", min=0, max=0.5,
                                        help="Validation share with eval_loss (0 = none).")]
Patience = Annotated[int, typer.Option(min=0, help="With --val-size: early stopping after this many evaluations "
                                       "without a lower eval_loss (0 = off).")]


def _validation(val_size: float, patience: int) -> configs.Validation | None:
    return configs.Validation(val_size, patience or None) if val_size > 0 else None


class _StageProgress:
    """A rich progress display fed by the runner's status of each stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, label: str, status: RunStatus) -> None:
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=None, info=f"starting {status.id}")
        task, p = self.tasks[label], status.progress
        if p is None:
            return
        info = f"loss {p.loss if p.loss is not None else '-'} · lr {p.lr or 0:.2e} · eta {p.eta}"
        info += f" · grad norm {p.grad_norm}" if p.grad_norm is not None else ""
        info += f" · {p.samples_per_second} samples/s" if p.samples_per_second else ""
        info += f" · reward acc {p.accuracy:.2f}" if p.accuracy is not None else ""
        self.progress.update(task, total=p.total or None, completed=p.step, info=info)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console)


def _show_version(version: ModelVersion) -> None:
    kind = "merged model" if version.merged else f"LoRA adapter on {version.base_model}"
    console.print(f"[green]registered[/green] {version.name} ({kind}) ← {version.parent or version.base_model}: "
                  f"{version.path}")


def _config_only(workspace: Workspace, plan: pipeline.StagePlan) -> None:
    """Write the config the run would start with, once LLaMA-Factory's parser accepts it."""
    written = configs.write_config(workspace, plan.config, validate=True)
    for note in written.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"[green]config written[/green] {written.path} (accepted by LLaMA-Factory's parser)")


@app.command()
def cpt(workspace: WorkspaceOption = Path("."), overrides: OverridesArg = None, config_only: ConfigOnly = False,
        dataset: Annotated[str, typer.Option(help="Registered CPT dataset (default: the newest).")] = "",
        base: Annotated[str, typer.Option(help="Base model (default: train.base_model).")] = "",
        val_size: ValSize = 0.0, patience: Patience = 3, settings: SetOption = None) -> None:
    """CPT (LoRA) on the base, merged into completion vN.0."""
    ws = workspace_from(workspace, settings)
    dataset = dataset or latest_dataset(ws, "pt")
    if config_only:
        _config_only(ws, pipeline.plan_stage(ws, "pt", dataset, None, base or None, overrides or [],
                                             _validation(val_size, patience)))
        return
    with _progress() as progress:
        version = pipeline.train_cpt(ws, dataset, base or None, overrides or [], _StageProgress(progress),
                                     _validation(val_size, patience))
    _show_version(version)


@app.command()
def sft(workspace: WorkspaceOption = Path("."), overrides: OverridesArg = None, config_only: ConfigOnly = False,
        dataset: Annotated[str, typer.Option(help="Registered SFT dataset (default: the newest).")] = "",
        parent: Annotated[str, typer.Option(help="Completion version to start from (default: the newest).")] = "",
        from_base: Annotated[bool, typer.Option("--from-base", help="Start from the raw base instead.")] = False,
        val_size: ValSize = 0.0, patience: Patience = 3, settings: SetOption = None) -> None:
    """SFT (LoRA) on a completion version (or the raw base), merged into chat vN.0."""
    ws = workspace_from(workspace, settings)
    dataset = dataset or latest_dataset(ws, "sft")
    newest = registry.latest_version(ws, "completion")
    parent = "" if from_base else parent or (newest.name if newest else "")
    if config_only:
        source = registry.resolve(ws, parent) if parent else None
        _config_only(ws, pipeline.plan_stage(ws, "sft", dataset, source, None, overrides or [],
                                             _validation(val_size, patience)))
        return
    with _progress() as progress:
        version = pipeline.train_sft(ws, dataset, parent or None, overrides or [], _StageProgress(progress),
                                     _validation(val_size, patience))
    _show_version(version)


@app.command()
def dpo(workspace: WorkspaceOption = Path("."), overrides: OverridesArg = None, config_only: ConfigOnly = False,
        dataset: Annotated[str, typer.Option(help="Registered preference dataset.")] = "prefs",
        parent: Annotated[str, typer.Option(help="Chat version or alias to improve.")] = "production",
        val_size: ValSize = 0.0, patience: Patience = 3, settings: SetOption = None) -> None:
    """DPO: a new LoRA on the parent chat model (also the reference model), registered as chat vN.M+1."""
    ws = workspace_from(workspace, settings)
    if config_only:
        _config_only(ws, pipeline.plan_stage(ws, "dpo", dataset, registry.resolve(ws, parent), None,
                                             overrides or [], _validation(val_size, patience)))
        return
    with _progress() as progress:
        version = pipeline.train_dpo(ws, dataset, parent, overrides or [], _StageProgress(progress),
                                     _validation(val_size, patience))
    _show_version(version)


@app.command()
def offline(workspace: WorkspaceOption = Path("."),
            cpt_dataset: Annotated[str, typer.Option(help="Registered CPT dataset (default: the newest).")] = "",
            sft_dataset: Annotated[str, typer.Option(help="Registered SFT dataset (default: the newest).")] = "",
            base: Annotated[str, typer.Option(help="Base model (default: train.base_model).")] = "",
            cpt_set: Annotated[list[str] | None, typer.Option("--cpt", help="CPT override key=value.")] = None,
            sft_set: Annotated[list[str] | None, typer.Option("--sft", help="SFT override key=value.")] = None,
            val_size: ValSize = 0.0, patience: Patience = 3, settings: SetOption = None) -> None:
    """The offline pipeline: CPT → merge → completion vN.0 → SFT → merge → chat vN.0."""
    ws = workspace_from(workspace, settings)
    cpt_dataset = cpt_dataset or latest_dataset(ws, "pt")
    sft_dataset = sft_dataset or latest_dataset(ws, "sft")
    with _progress() as progress:
        completion, chat = pipeline.train_offline(ws, cpt_dataset, sft_dataset, base or None, cpt_set or [],
                                                  sft_set or [], _StageProgress(progress),
                                                  _validation(val_size, patience))
    _show_version(completion)
    _show_version(chat)


def _status_table(statuses: list[RunStatus]) -> Table:
    rows = [[s.id, s.stage, s.status, str(s.pid or ""), "" if s.exit_code is None else str(s.exit_code),
             f"{count_text(s.progress.step)}/{count_text(s.progress.total)}" if s.progress else "",
             loss_text(s.progress.loss) if s.progress else "", s.progress.eta if s.progress else ""]
            for s in statuses]
    return names_table(["run", "stage", "status", "pid", "exit", "step", "loss", "eta"], rows)


@app.command()
def status(run: Annotated[str, typer.Argument(help="Run id; all runs when omitted.")] = "",
           workspace: WorkspaceOption = Path("."), settings: SetOption = None, as_json: JsonOption = False) -> None:
    """A run's status and progress (all runs without RUN); a run whose process died is marked failed."""
    trainer = LLaMAFactoryTrainer(workspace_from(workspace, settings))
    statuses = [trainer.get_status(r.id) for r in trainer.list_runs()] if not run else [trainer.get_status(run)]
    if as_json:
        print_json([asdict(s) for s in statuses])
        return
    console.print(_status_table(statuses))
    if not run:
        return
    current = statuses[0]
    for line in current.metrics.get("diagnosis", []):
        console.print(f"[yellow]diagnosis:[/yellow] {line}", highlight=False)
    if current.error:
        console.print(current.error, highlight=False, markup=False)


@app.command()
def logs(run: RunArg, workspace: WorkspaceOption = Path("."),
         tail: Annotated[int, typer.Option(help="Last N lines (0 = all).")] = 50, settings: SetOption = None) -> None:
    """The log of a run."""
    trainer = LLaMAFactoryTrainer(workspace_from(workspace, settings))
    console.print(trainer.logs(run, tail or None), highlight=False, markup=False)


@app.command()
def stop(run: RunArg, workspace: WorkspaceOption = Path("."), settings: SetOption = None) -> None:
    """Stop a run: SIGINT, then SIGTERM, then SIGKILL (train.stop_grace_s apart)."""
    result = LLaMAFactoryTrainer(workspace_from(workspace, settings)).stop_training(run)
    console.print(f"run {result.id}: {result.status}")
