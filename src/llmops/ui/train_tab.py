"""Train tab (spec 3, 5.1, 8.2 steps 2–3): config forms, generate YAML, start / stop, live log and loss, history.

"Start training" runs the CLI's pipeline (train → merge → register, `train.network.start_network_config`) from
a config in the workspace's configs/llmops/: the training is a `llamafactory-cli train` subprocess, never this
process; a worker thread waits for it, merges and registers the version, and its outcome shows in the status.
A gr.Timer polls the selected run; the page load selects the running one again (spec 5.2 `resume`). The forms'
dropdowns are re-read when the page loads, when the Train tab or a stage's tab is opened, and once the watched
run's pipeline is done (so the version it registered is there to pick).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from llmops.errors import LLMOpsError
from llmops.train.network import start_network_config
from llmops.train.progress import read_trainer_log
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.train.runs import RunStatus
from llmops.ui import train_forms
from llmops.ui.section import Section, failed, frame, when
from llmops.workspace import Workspace

RUN_COLUMNS = ("id", "stage", "status", "started", "finished", "exit_code", "final_loss", "config_path", "error")
LOG_LINES = 60
POLL_SECONDS = 2.0


def runs_table(trainer: LLaMAFactoryTrainer) -> pd.DataFrame:
    rows = [
        {"id": r.id, "stage": r.stage, "status": r.status, "started": when(r.started_at),
         "finished": when(r.finished_at), "exit_code": r.exit_code, "final_loss": _num(r.metrics.get("final_loss")),
         "config_path": r.config_path, "error": r.error[-200:]}
        for r in reversed(trainer.list_runs())
    ]
    return frame(rows, RUN_COLUMNS)


def loss_curve(status: RunStatus) -> pd.DataFrame:
    entries = read_trainer_log(Path(status.output_dir)) if status.output_dir else []
    points = [{"step": e.get("current_steps"), "loss": e.get("loss")} for e in entries if e.get("loss") is not None]
    return frame(points, ("step", "loss"))


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def describe(status: RunStatus) -> str:
    line = f"**{status.id}** ({status.stage}): **{status.status}**"
    progress = status.progress
    if progress is not None:
        line += (f" · step {progress.step}/{progress.total} · loss {_num(progress.loss)} · lr {_num(progress.lr)}"
                 f" · grad_norm {_num(progress.grad_norm)} · elapsed {progress.elapsed} · eta {progress.eta}")
    if status.error:
        line += f"\n\n```\n{status.error}\n```"
    return line


def outcome_text(outcome: str, status: RunStatus) -> str:
    """The pipeline's outcome under the status line: its first line, and the rest in a code block unless it is
    the run's error the status line shows already (a failed run's diagnosis and log tail)."""
    first, _, rest = outcome.partition("\n")
    rest = rest.strip()
    if not rest or rest in status.error:
        return first
    return f"{first}\n\n```\n{rest}\n```"


def watch(trainer: LLaMAFactoryTrainer, run_id: str,
          outcomes: Mapping[str, str] | None = None) -> tuple[str, str, pd.DataFrame]:
    """(status line with the pipeline's outcome, log tail, loss curve) of one run; empty when none is selected."""
    if not run_id:
        return "no run selected", "", frame([], ("step", "loss"))
    try:
        status = trainer.get_status(run_id)
        log = trainer.logs(run_id, tail=LOG_LINES)
    except LLMOpsError as exc:
        return failed(exc), "", frame([], ("step", "loss"))
    outcome = (outcomes or {}).get(run_id)
    return describe(status) + (f"\n\n{outcome_text(outcome, status)}" if outcome else ""), log, loss_curve(status)


def start_run(trainer: LLaMAFactoryTrainer, outcomes: dict[str, str], path: str) -> tuple[str, str]:
    """The "Start training" button: the config's pipeline run in the background; (run id, message). `outcomes` gets
    what became of the run (the version registered, or why none was)."""
    try:
        run_id = start_network_config(trainer, path or "", outcomes.__setitem__)
    except LLMOpsError as exc:
        return "", failed(exc)
    return run_id, f"started from `{path}`; merged and registered like the CLI's once it succeeds"


def selected_run(trainer: LLaMAFactoryTrainer) -> str:
    """The run to show after a page load: a running one if any, else the latest."""
    runs = trainer.list_runs()
    active = [r for r in runs if not r.finished]
    chosen = active or runs
    return max(chosen, key=lambda r: r.started_at).id if chosen else ""


def _stage_tab(workspace: Workspace, stage: str) -> tuple[train_forms.Form, gr.Button]:
    """A stage's form; opening its tab re-reads the registered datasets and models into its dropdowns."""
    with gr.Tab(stage, id=f"train-{stage.lower()}") as tab:
        form = train_forms.render_form(workspace, stage)
        button = gr.Button(f"Generate {stage} config", elem_id=f"generate-{stage.lower()}")
    tab.select(lambda: train_forms.choices(workspace, stage), outputs=[form.dataset, form.model])
    return form, button


def refreshed(workspace: Workspace, outcomes: Mapping[str, str], run_id: str, seen: str) -> list[Any]:
    """The timer's dropdown refresh: once the watched run's pipeline has an outcome (a version registered or
    not), (that run id, every form's dataset and model updates); until then, or once done, (seen, skips)."""
    if not run_id or run_id == seen or run_id not in outcomes:
        return [seen, *(gr.skip() for _ in range(2 * len(train_forms.STAGES)))]
    return [run_id, *(update for stage in train_forms.STAGES for update in train_forms.choices(workspace, stage))]


def _bind_generate(workspace: Workspace, form: train_forms.Form, button: gr.Button, outputs: list[Any]) -> None:
    def generate(*values: Any) -> tuple[str, str, str]:
        try:
            return train_forms.generate(workspace, form, values)
        except LLMOpsError as exc:
            return "", "", failed(exc)

    button.click(generate, inputs=form.inputs, outputs=outputs)


def _run_controls(trainer: LLaMAFactoryTrainer, outcomes: dict[str, str], config_path: gr.Textbox) -> gr.Textbox:
    with gr.Row():
        start_btn = gr.Button("Start training", variant="primary")
        run_id = gr.Textbox(label="Run", interactive=True, elem_id="run-id")
        stop_btn = gr.Button("Stop", variant="stop")
    action = gr.Markdown()

    def start(path: str) -> tuple[str, str]:
        return start_run(trainer, outcomes, path)

    def stop(current: str) -> str:
        try:
            return f"{current}: {trainer.stop_training(current).status}" if current else "no run selected"
        except LLMOpsError as exc:
            return failed(exc)

    start_btn.click(start, inputs=config_path, outputs=[run_id, action])
    stop_btn.click(stop, inputs=run_id, outputs=action)
    return run_id


def render(workspace: Workspace, trainer: LLaMAFactoryTrainer) -> Section:
    with gr.Tabs():
        stages = [_stage_tab(workspace, stage) for stage in train_forms.STAGES]
    config_path = gr.Textbox(label="Config file", interactive=False, elem_id="config-path")
    notes = gr.Markdown()
    yaml_box = gr.Code(label="LLaMA-Factory YAML", language="yaml", interactive=False, elem_id="config-yaml")
    for form, button in stages:
        _bind_generate(workspace, form, button, [config_path, yaml_box, notes])
    outcomes: dict[str, str] = {}
    run_id = _run_controls(trainer, outcomes, config_path)
    status = gr.Markdown(elem_id="run-status")
    with gr.Row():
        log = gr.Textbox(label="Log (tail)", lines=14, max_lines=14, interactive=False, autoscroll=True, scale=3,
                         elem_id="run-log")
        curve = gr.LinePlot(x="step", y="loss", title="loss", scale=2)
    history = gr.Dataframe(label="Runs", headers=list(RUN_COLUMNS), interactive=False, elem_id="run-history")
    timer = gr.Timer(POLL_SECONDS)
    timer.tick(lambda current: (*watch(trainer, current, outcomes), runs_table(trainer)), inputs=run_id,
               outputs=[status, log, curve, history], show_progress="hidden")
    run_id.change(lambda current: watch(trainer, current, outcomes), inputs=run_id, outputs=[status, log, curve])
    selectors = [widget for form, _ in stages for widget in (form.dataset, form.model)]
    seen = gr.State("")
    timer.tick(lambda current, done: refreshed(workspace, outcomes, current, done), inputs=[run_id, seen],
               outputs=[seen, *selectors], show_progress="hidden")

    def load() -> list[Any]:
        current = selected_run(trainer)
        dropdowns = [update for form, _ in stages for update in train_forms.choices(workspace, form.stage)]
        return [current, *watch(trainer, current, outcomes), runs_table(trainer), *dropdowns]

    return Section("train", load, [run_id, status, log, curve, history, *selectors])
