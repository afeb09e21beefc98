"""Loop & rollout tab (spec 6.3, 6.4, 9.3): the trigger with its reasons and the tick's prerequisites (`llmops loop
status`), "Train DPO now" (the loop's tick, `llmops loop tick`, trained even when the trigger waits: export →
DPO → evaluate → gate), the latest evaluation with its interval and gate decision, the rollout's controls, its
history as a table and its charts.

Starting, promoting and rolling back go through the gateway's admin routes (GatewayClient, as `ui`), as the HTTP
API does; advancing a stage and checking the guardrails are the loop's rollout functions (as `llmops rollout
step` calls them), with by="ui". The tick runs in a server thread (its DPO training is a `llamafactory-cli`
subprocess); a gr.Timer shows its progress and refreshes the tab when it ends.
"""

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import gradio as gr

from llmops.errors import LLMOpsError
from llmops.loop import flywheel
from llmops.loop.rollout import advance_stage, step_rollout
from llmops.models.registry import PREFERENCE_STAGES
from llmops.models.rollouts import current_rollout
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.ui import rollout_view
from llmops.ui.gateway_client import GatewayClient
from llmops.ui.section import Section, failed, when
from llmops.workspace import Workspace

POLL_SECONDS = 2.0
RUNNING_CANDIDATE = ("the running rollout's candidate", "")
NO_GATEWAY = "needs the gateway: start it with `llmops serve` or `llmops ui`"


class TrainNow:
    """The "Train DPO now" job: one `tick` (the loop's, with `force`) at a time, in a server thread; what it did is
    kept for the status line until the next start, with the progress of the DPO run it started."""

    def __init__(self, trainer: LLaMAFactoryTrainer, tick: Callable[[], flywheel.TickResult]) -> None:
        self.trainer, self.tick = trainer, tick
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._outcome = ""
        self._unseen = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> str:
        if self.running:
            raise LLMOpsError("train DPO now: the tick started here is still running")
        self._started_at, self._outcome = time.time(), ""
        self._thread = threading.Thread(target=self._tick, name="llmops-ui-train-dpo", daemon=True)
        self._thread.start()
        return "started: export the preference pairs → train DPO on production → evaluate → gate"

    def _tick(self) -> None:
        try:
            result = self.tick()
            self._outcome = f"**{result.action}**: {result.detail}"
        except Exception as exc:  # the thread's end is reported in the status line, not as a traceback
            self._outcome = failed(exc)
        self._unseen = True

    def finished_unseen(self) -> bool:
        """True once after the tick ended (the timer then refreshes the whole tab)."""
        seen, self._unseen = self._unseen, False
        return seen

    def status(self) -> str:
        if self._started_at is None:
            return ""
        line = f"train DPO now, started {when(self._started_at)}: " + ("running" if self.running else "done")
        since = self._started_at
        runs = [r for r in self.trainer.list_runs() if r.stage in PREFERENCE_STAGES and r.started_at >= since]
        if runs:
            run = self.trainer.get_status(max(runs, key=lambda r: r.started_at).id)
            steps = f" · step {run.progress.step}/{run.progress.total}" if run.progress is not None else ""
            line += f" · run **{run.id}**: {run.status}{steps}"
        return line + (f"\n\n{self._outcome}" if self._outcome else "")


def promote_choices(workspace: Workspace, candidates: list[str]) -> Any:
    """The promote dropdown's update: while a rollout runs, its candidate (sent as "") first and selected;
    otherwise only the versions, the newest selected (nothing to promote by default is not an option then)."""
    names = [(name, name) for name in candidates]
    if current_rollout(workspace) is not None:
        return gr.update(choices=[RUNNING_CANDIDATE, *names], value="")
    return gr.update(choices=names, value=next(iter(candidates), None))


def values(workspace: Workspace) -> list[Any]:
    """The tab's outputs, in the order of `render`'s."""
    shown = rollout_view.snapshot(workspace)
    candidates = shown["candidates"]
    return [shown["checks"], shown["trigger"], shown["progress"], shown["evaluation"], shown["state"],
            shown["traffic"], gr.update(choices=candidates, value=next(iter(candidates), None)),
            promote_choices(workspace, candidates),
            shown["history"], shown["traffic_chart"], shown["rates_chart"], shown["latency_chart"]]


def _outputs() -> list[Any]:
    with gr.Row():
        checks = gr.Dataframe(label="Loop prerequisites (llmops loop status)",
                              headers=list(rollout_view.PREREQUISITE_COLUMNS), interactive=False, wrap=True,
                              scale=3, elem_id="loop-prerequisites")
        progress = gr.Label(label="Progress towards the DPO trigger", scale=1)
    trigger = gr.Markdown(elem_id="loop-trigger")
    evaluation = gr.Markdown(elem_id="loop-evaluation")
    with gr.Row():
        state = gr.Markdown(elem_id="rollout-state")
        traffic = gr.Slider(label="Candidate traffic share", minimum=0, maximum=1, interactive=False)
    with gr.Row():
        candidate = gr.Dropdown(label="Candidate to roll out", choices=[], elem_id="rollout-candidate")
        promote_target = gr.Dropdown(label="Model to promote", choices=[RUNNING_CANDIDATE], value="",
                                     elem_id="promote-model")
    return [checks, trigger, progress, evaluation, state, traffic, candidate, promote_target]


def _charts() -> list[Any]:
    history = gr.Dataframe(label="Rollout history (newest first)", headers=list(rollout_view.EVENT_COLUMNS),
                           interactive=False, wrap=True, elem_id="rollout-history")
    with gr.Row():
        traffic = gr.LinePlot(x="time", y="traffic", color="candidate", title="candidate traffic share per event")
        rates = gr.LinePlot(x="decision", y="value", color="metric", tooltip=["event", "metric", "value"],
                            title="error rate and feedback score at each decision")
        latency = gr.LinePlot(x="decision", y="value", color="metric", tooltip=["event", "value"],
                              title="latency p99 (ms) at each decision")
    return [history, traffic, rates, latency]


Action = Callable[..., Awaitable[str]]


def _bind(button: gr.Button, action: Action, inputs: list[Any], result: gr.Markdown, outputs: list[Any],
          workspace: Workspace) -> None:
    async def run(*args: Any) -> list[Any]:
        try:
            message = f"✅ {await action(*args)}"
        except LLMOpsError as exc:
            message = failed(exc)
        return [message, *values(workspace)]

    button.click(run, inputs=inputs, outputs=[result, *outputs])


def _gateway(client: GatewayClient | None) -> GatewayClient:
    if client is None:
        raise LLMOpsError(NO_GATEWAY)
    return client


def _buttons() -> tuple[list[gr.Button], gr.Markdown]:
    with gr.Row():
        buttons = [gr.Button("Start rollout", variant="primary", elem_id="rollout-start"),
                   gr.Button("Advance to the next stage", elem_id="rollout-advance"),
                   gr.Button("Check the guardrails now", elem_id="rollout-step"),
                   gr.Button("Promote", variant="primary", elem_id="rollout-promote"),
                   gr.Button("Roll back", variant="stop", elem_id="rollout-rollback")]
    return buttons, gr.Markdown(elem_id="rollout-result")


def _controls(workspace: Workspace, client: GatewayClient | None, buttons: list[gr.Button], result: gr.Markdown,
              outputs: list[Any]) -> None:
    token = workspace.admin_token

    async def start(candidate: str | None) -> str:
        if not candidate:
            raise LLMOpsError("candidate to roll out: none chosen (train a chat version first)")
        done = await _gateway(client).start_rollout(token(), candidate)
        return f"rollout of {done['candidate']} started at {done['traffic']:.0%} of traffic"

    async def advance() -> str:
        moved = advance_stage(workspace, by="ui")
        return f"{moved.candidate}: stage {moved.stage_index + 1}, {moved.traffic:.0%} of traffic"

    async def step() -> str:
        done = step_rollout(workspace, by="ui")
        return "no rollout is running" if done is None else f"{done.rollout.candidate}: {done.action}"

    async def promote(name: str | None) -> str:
        done = await _gateway(client).promote(token(), name or "")
        return f"promoted {done['production']} to production (previous: {done['previous'] or 'none'})"

    async def rollback() -> str:
        done = await _gateway(client).rollback(token())
        undone = f"rollout of {done['rolled_back']}" if "rolled_back" in done else "production"
        return f"rolled back the {undone}: production is {done['production']}"

    candidate, target = outputs[6], outputs[7]
    actions: list[tuple[Action, list[Any]]] = [(start, [candidate]), (advance, []), (step, []), (promote, [target]),
                                                (rollback, [])]
    for button, (action, inputs) in zip(buttons, actions, strict=True):
        _bind(button, action, inputs, result, outputs, workspace)


def _train_buttons() -> tuple[gr.Button, gr.Button, gr.Markdown]:
    with gr.Row():
        train_btn = gr.Button("Train DPO now", variant="primary", elem_id="loop-train-now")
        refresh = gr.Button("Refresh", elem_id="loop-refresh")
    return train_btn, refresh, gr.Markdown(elem_id="loop-train-status")


def _train_now(workspace: Workspace, job: TrainNow, widgets: tuple[gr.Button, gr.Button, gr.Markdown],
               outputs: list[Any]) -> None:
    train_btn, refresh, status = widgets

    def start() -> str:
        try:
            return job.start()
        except LLMOpsError as exc:
            return failed(exc)

    def poll() -> list[Any]:
        if job.finished_unseen():
            return [job.status(), *values(workspace)]
        return [job.status(), *[gr.skip()] * len(outputs)]

    train_btn.click(start, outputs=status)
    refresh.click(lambda: values(workspace), outputs=outputs)
    gr.Timer(POLL_SECONDS).tick(poll, outputs=[status, *outputs], show_progress="hidden")


def render(workspace: Workspace, client: GatewayClient | None, trainer: LLaMAFactoryTrainer) -> Section:
    top = _outputs()
    buttons, result = _buttons()
    train = _train_buttons()
    outputs = [*top, *_charts()]
    _controls(workspace, client, buttons, result, outputs)
    _train_now(workspace, TrainNow(trainer, lambda: flywheel.tick(workspace, force=True)), train, outputs)
    return Section("loop", lambda: values(workspace), outputs)
