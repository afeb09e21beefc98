"""What the Loop & rollout tab shows, read from the library: the rollout history as a table with one column per
metric (rounded), its charts (traffic share per event, guardrail metrics at each decision), the rollout's state,
the latest gate evaluation and the loop's prerequisites and trigger (the data of `llmops loop status`)."""

import time
from typing import Any

import pandas as pd

from llmops.loop import prerequisites
from llmops.loop.flywheel import latest_gate
from llmops.loop.rollout import stage_progress
from llmops.loop.trigger import TriggerDecision, should_trigger_dpo_training
from llmops.models import registry
from llmops.models.metrics import version_metrics
from llmops.models.rollouts import (
    EVIDENCE_COLUMNS,
    EVIDENCE_GUARDRAILS,
    Event,
    current_rollout,
    evidence_columns,
    history,
)
from llmops.ui.section import frame, when
from llmops.workspace import Workspace

GUARDRAILS = EVIDENCE_GUARDRAILS
EVENT_COLUMNS = ("time", "candidate", "event", "traffic", *EVIDENCE_COLUMNS)
PREREQUISITE_COLUMNS = ("prerequisite", "ok", "detail", "fix")


def event_row(event: Event) -> dict[str, Any]:
    """One decision: when, which candidate, its traffic share after it, and its evidence (models/rollouts.py)."""
    return {"time": when(event.created_at), "candidate": event.candidate, "event": event.event,
            "traffic": round(event.traffic, 3), **evidence_columns(event.evidence)}


def events_table(events: list[Event]) -> pd.DataFrame:
    """The history, newest first."""
    return frame([event_row(event) for event in reversed(events)], EVENT_COLUMNS)


def traffic_series(events: list[Event]) -> pd.DataFrame:
    """The candidate's traffic share after each event (for the chart)."""
    rows = [{"time": pd.Timestamp(e.created_at, unit="s"), "candidate": e.candidate, "traffic": e.traffic}
            for e in events]
    return frame(rows, ("time", "candidate", "traffic"))


def guardrail_series(events: list[Event], metrics: tuple[str, ...]) -> pd.DataFrame:
    """Long form (decision number, metric, value) of the candidate's `metrics` at each decision that measured them;
    the decision is labelled with its number in the history, its candidate and event."""
    rows = []
    for number, event in enumerate(events, start=1):
        shown = evidence_columns(event.evidence)
        for name in metrics:
            if isinstance(value := shown[name], int | float):
                rows.append({"decision": number, "metric": name, "value": value,
                             "event": f"{event.candidate} {event.event}"})
    return frame(rows, ("decision", "metric", "value", "event"))


def rollout_state(workspace: Workspace, now: float | None = None) -> tuple[str, float]:
    """(the running rollout and its stage's progress, or production alone; the candidate's traffic share)."""
    running = current_rollout(workspace)
    if running is None:
        production = registry.aliases(workspace).get("production", "none")
        return f"production: **{production}** · no rollout running", 0.0
    settings = workspace.settings.loop
    done = stage_progress(running, version_metrics(workspace, running.candidate, running.stage_started_at),
                          time.time() if now is None else now, settings)
    return (f"production: **{running.production}** · candidate **{running.candidate}** at stage "
            f"{running.stage_index + 1} of {len(settings.rollout_stages)} since {when(running.stage_started_at)} · "
            f"{done['hours']:.2f} of {done['min_hours']:g} hours, {done['requests']} of {done['min_requests']} "
            "candidate requests", running.traffic)


def evaluation_text(workspace: Workspace) -> str:
    """The latest evaluation the promotion gate decided on: win rate, its 95% interval and the decision."""
    record = latest_gate(workspace)
    if record is None:
        return "no candidate evaluated yet"
    e = record.evaluation
    decision = (f"gate **passed** (lower bound {e.ci_low:.3f} > {record.lower_bound:g})" if record.passed else
                f"gate **failed** (lower bound {e.ci_low:.3f} ≤ {record.lower_bound:g})")
    return (f"**{e.new_model}** vs {e.old_model} (judge {e.judge}, {when(record.at)}): win rate **{e.win_rate:.3f}**, "
            f"95% interval [{e.ci_low:.3f}, {e.ci_high:.3f}] over {e.comparisons} comparisons ({e.prompts} prompts; "
            f"{e.wins} wins, {e.losses} losses, {e.ties} ties) · {decision}")


def trigger_status(workspace: Workspace) -> tuple[pd.DataFrame, str, dict[str, float]]:
    """(each prerequisite of a tick, ok or why not; whether DPO (or KTO) is triggered and why; progress per target)."""
    inputs = prerequisites.gather(workspace)
    checks = [{"prerequisite": c.name, "ok": "ok" if c.ok else "missing", "detail": c.detail, "fix": c.fix}
              for c in prerequisites.check(inputs, workspace.settings.loop)]
    decision = inputs.trigger or should_trigger_dpo_training(workspace)
    objective = decision.objective.upper()
    verdict = f"🔔 **{objective} trigger fires**" if decision.fire else f"{objective} trigger **waits**"
    reasons = "\n".join(f"- {reason}" for reason in decision.reasons)
    return frame(checks, PREREQUISITE_COLUMNS), f"{verdict}\n\n{reasons}", trigger_progress(decision)


def trigger_progress(decision: TriggerDecision) -> dict[str, float]:
    """The share reached of each collection target, labelled with its goal in the objective's unit."""
    goals = {"min": decision.min_samples, "target": decision.target_samples, "optimal": decision.optimal_samples}
    unit = "KTO examples" if decision.objective == "kto" else "pairs"
    return {f"{name} ({goals[name]} {unit})": share for name, share in decision.progress().items()}


def rollout_candidates(workspace: Workspace) -> list[str]:
    """Chat versions that could be rolled out against production (any but production), newest first."""
    production = registry.aliases(workspace).get("production")
    return [v.name for v in reversed(registry.list_versions(workspace)) if v.kind == "chat" and v.name != production]


def snapshot(workspace: Workspace) -> dict[str, Any]:
    """Everything the tab shows, by name."""
    events = history(workspace)
    checks, trigger, progress = trigger_status(workspace)
    state, traffic = rollout_state(workspace)
    return {"checks": checks, "trigger": trigger, "progress": progress, "evaluation": evaluation_text(workspace),
            "state": state, "traffic": traffic, "history": events_table(events),
            "traffic_chart": traffic_series(events),
            "rates_chart": guardrail_series(events, ("error_rate", "feedback_score")),
            "latency_chart": guardrail_series(events, ("latency_p99_ms",)),
            "candidates": rollout_candidates(workspace)}
