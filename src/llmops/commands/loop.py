"""`llmops loop …`: The online loop: trigger → DPO → evaluate → rollout."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress_bar import ProgressBar
from rich.table import Table

from llmops.commands.common import SetOption, WorkspaceOption, console, workspace_from
from llmops.loop.trigger import should_trigger_dpo_training

if TYPE_CHECKING:
    from llmops.loop import flywheel

app = typer.Typer(help="The online loop: trigger → DPO → evaluate → rollout.", no_args_is_help=True)

_COLOURS = {"rollout_rolled_back": "red", "gate_failed": "red", "error": "red", "rollout_promoted": "green",
            "rollout_started": "green", "busy": "yellow"}


def _show(result: flywheel.TickResult) -> None:
    colour = _COLOURS.get(result.action, "cyan")
    console.print(f"[{colour}]{result.action}[/{colour}] {result.detail}", highlight=False)


@app.command()
def status(workspace: WorkspaceOption = Path("."), overrides: SetOption = None) -> None:
    """Each prerequisite of a tick (production model, eval set, judge, trigger), ok or why not; then whether DPO
    would be triggered now, why, and progress towards the collection targets (spec 6.3.1)."""
    from llmops.loop import prerequisites

    ws = workspace_from(workspace, overrides)
    inputs = prerequisites.gather(ws)
    checks = Table("prerequisite", "ok", "detail", "fix", title="loop tick prerequisites")
    for check in prerequisites.check(inputs, ws.settings.loop):
        checks.add_row(check.name, "[green]ok[/green]" if check.ok else "[red]missing[/red]", check.detail, check.fix)
    console.print(checks)
    decision = inputs.trigger or should_trigger_dpo_training(ws)
    verdict = "[green]fires[/green]" if decision.fire else "[yellow]waits[/yellow]"
    console.print(f"{decision.objective.upper()} trigger {verdict}")
    for reason in decision.reasons:
        console.print(f"  • {reason}", highlight=False)
    table = Table("collection target", "pairs (DPO)", "KTO examples", f"progress ({decision.objective})")
    goals = {"min": decision.min_samples, "target": decision.target_samples, "optimal": decision.optimal_samples}
    for name, share in decision.progress().items():
        table.add_row(f"{name} ({goals[name]})", str(decision.new_pairs), str(decision.kto.examples),
                      ProgressBar(total=1.0, completed=share))
    console.print(table)


@app.command()
def tick(workspace: WorkspaceOption = Path("."), overrides: SetOption = None) -> None:
    """One step: advance/roll back a running rollout, or trigger → export → DPO → evaluate → start the canary."""
    from llmops.loop import flywheel

    _show(flywheel.tick(workspace_from(workspace, overrides)))


@app.command()
def run(
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
    every: Annotated[str, typer.Option(help="Time between ticks: 30s, 10m, 2h …")] = "10m",
    ticks: Annotated[int | None, typer.Option(min=1, help="Stop after this many ticks (default: run until "
                                              "Ctrl-C).")] = None,
) -> None:
    """Tick on a schedule. State lives in the database, so a restarted loop resumes where it stopped. A tick
    that would train with a prerequisite missing (see `llmops loop status`) reports it and trains nothing."""
    from llmops.loop import flywheel

    ws = workspace_from(workspace, overrides)
    seconds = flywheel.parse_every(every)
    try:
        flywheel.run_forever(ws, seconds, _show, ticks, on_start=lambda: console.print(
            f"loop running every {seconds:g}s on {ws.root} (Ctrl-C to stop)"))
    except KeyboardInterrupt:
        console.print("loop stopped")


@app.command()
def evaluate(
    candidate: Annotated[str, typer.Argument(help="Version to judge against production, e.g. chat-v1.1.")],
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """Judge `candidate` against production on the held-out set (loop.eval_set) with loop.judge; no rollout."""
    from llmops.loop import flywheel

    ws = workspace_from(workspace, overrides)
    result = flywheel.evaluate_candidate(ws, candidate)
    gate = ws.settings.loop.gate_lower_bound
    table = Table(title=f"{result.new_model} vs {result.old_model}", show_header=False)
    for name, value in (
        ("judge", result.judge),
        ("win rate", f"{result.win_rate:.3f}"),
        ("95% interval", f"[{result.ci_low:.3f}, {result.ci_high:.3f}]"),
        ("avg score new / old", f"{result.avg_score:.3f} / {result.avg_score_old:.3f}"),
        ("consistency", f"{result.consistency:.2f}"),
        ("comparisons (prompts)", f"{result.comparisons} ({result.prompts})"),
        ("gate", f"passes (> {gate})" if result.passes(gate) else f"fails (≤ {gate})"),
    ):
        table.add_row(name, value)
    console.print(table)
