"""`llmops rollout …`: Gradual rollout: status, history, start, step, promote, rollback."""

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from llmops.commands.common import SetOption, WorkspaceOption, console, count_text, names_table, workspace_from
from llmops.loop import rollout
from llmops.models import rollouts
from llmops.models.metrics import version_metrics

app = typer.Typer(help="Gradual rollout: status, history, start, step, promote, rollback.", no_args_is_help=True)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def status(workspace: WorkspaceOption = Path("."), overrides: SetOption = None) -> None:
    """The latest rollout: stage, traffic share and each version's live metrics in the current stage."""
    ws = workspace_from(workspace, overrides)
    latest = rollouts.latest_rollout(ws)
    if latest is None:
        console.print("no rollout yet")
        return
    stages = ws.settings.loop.rollout_stages
    console.print(f"[bold]{latest.candidate}[/bold] vs production {latest.production}: {latest.status}, "
                  f"stage {latest.stage_index + 1}/{len(stages)}, candidate traffic {latest.traffic:.0%}, "
                  f"stage since {_when(latest.stage_started_at)} UTC")
    if latest.status == rollouts.RUNNING:
        done = rollout.stage_progress(latest, version_metrics(ws, latest.candidate, latest.stage_started_at),
                                      time.time(), ws.settings.loop)
        console.print(f"stage minimums: {done['hours']:.1f} of {done['min_hours']:g} hours, "
                      f"{done['requests']} of {done['min_requests']} candidate requests")
    rows = []
    for name in (latest.candidate, latest.production):
        m = version_metrics(ws, name, latest.stage_started_at)
        feedback = "-" if m.feedback_score is None else f"{m.feedback_score:+.2f}"
        rows.append([name, count_text(m.requests), f"{m.error_rate:.1%}", f"{m.latency_p50_ms:.0f}",
                     f"{m.latency_p99_ms:.0f}", feedback])
    console.print(names_table(["version", "requests", "error rate", "p50 ms", "p99 ms", "feedback"], rows))


@app.command()
def history(
    workspace: WorkspaceOption = Path("."),
    candidate: Annotated[str | None, typer.Option(help="Only this candidate's events.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
    overrides: SetOption = None,
) -> None:
    """Every rollout decision with its evidence, oldest first."""
    events = rollouts.history(workspace_from(workspace, overrides), candidate)
    if as_json:
        for event in events:
            typer.echo(json.dumps(event.__dict__, ensure_ascii=False))
        return
    rows = [[_when(event.created_at), event.candidate, event.event, f"{event.traffic:.0%}",
             json.dumps(event.evidence, ensure_ascii=False)[:200]] for event in events]
    console.print(names_table(["time (UTC)", "candidate", "event", "traffic", "evidence"], rows, name_column=1))


@app.command()
def start(
    candidate: Annotated[str, typer.Argument(help="Registered version to roll out, e.g. chat-v1.1.")],
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """Begin the first canary stage of `candidate` against the current production version."""
    started = rollouts.start_rollout(workspace_from(workspace, overrides), candidate, {"reason": "manual"}, by="cli")
    console.print(f"[green]rollout started[/green] {started.candidate}: {started.traffic:.0%} of traffic")


@app.command()
def step(workspace: WorkspaceOption = Path("."), overrides: SetOption = None) -> None:
    """Judge the running stage once: roll back on a guardrail breach, else advance or promote when done."""
    result = rollout.step_rollout(workspace_from(workspace, overrides), by="cli")
    if result is None:
        console.print("no rollout is running")
        return
    console.print(f"{result.rollout.candidate}: {result.action}, traffic {result.rollout.traffic:.0%}")


@app.command()
def promote(
    workspace: WorkspaceOption = Path("."),
    reason: Annotated[str, typer.Option(help="Why, recorded with the event.")] = "manual",
    overrides: SetOption = None,
) -> None:
    """Promote the running candidate now: `previous` ← old production, `production` ← candidate."""
    done = rollouts.promote(workspace_from(workspace, overrides), by="cli", reason=reason)
    console.print(f"[green]promoted[/green] {done.production} (previous: {done.displaced})")


@app.command()
def rollback(
    workspace: WorkspaceOption = Path("."),
    reason: Annotated[str, typer.Option(help="Why, recorded with the event.")] = "manual",
    overrides: SetOption = None,
) -> None:
    """Stop the running rollout (candidate traffic 0); with none running, point production back at `previous`."""
    done = rollouts.rollback(workspace_from(workspace, overrides), by="cli", reason=reason)
    if done.rollout is not None:
        console.print(f"[yellow]rolled back[/yellow] {done.rollout.candidate}; production stays {done.production}")
        return
    console.print(f"[yellow]production reverted[/yellow] to {done.production}")
