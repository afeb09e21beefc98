"""Gradual rollout policy (spec 6.4, 9.3): canary stages, guardrails, automatic rollback, promotion.

The state of a rollout (its row, traffic share and events) lives in models/rollouts.py beside the aliases; this
module decides and writes only through it, so a restarted process resumes the same stage. A stage is judged on
live per-version metrics measured since the stage began: any guardrail breach (spec 9.3.2: error rate, p99
latency, feedback score below production's) rolls back at once: traffic 0, `production` unchanged. A stage
advances once it has served its `min_requests` candidate requests and lasted its `min_hours` (each stage of
`loop.rollout_stages` has its own, spec 9.3.1); passing the last stage promotes: `previous` ← old production,
`production` ← candidate.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from llmops.errors import LLMOpsError
from llmops.models import registry, rollouts
from llmops.models.metrics import version_metrics
from llmops.models.rollouts import PROMOTED, ROLLED_BACK, Actor, Change, Rollout
from llmops.settings import LoopSettings
from llmops.workspace import Workspace


class LiveMetrics(Protocol):
    """The per-version numbers a guardrail reads (serving's VersionMetrics has them)."""

    @property
    def requests(self) -> int: ...
    @property
    def error_rate(self) -> float: ...
    @property
    def latency_p99_ms(self) -> float: ...
    @property
    def feedback_score(self) -> float | None: ...


MetricsSource = Callable[[Workspace, str, float | None], LiveMetrics]
"""(workspace, version name, since) → live metrics of that version since the time given."""


@dataclass(frozen=True)
class Breach:
    metric: str
    value: float
    limit: float

    def describe(self) -> str:
        return f"{self.metric} {self.value:.4g} breaches limit {self.limit:.4g}"


@dataclass(frozen=True)
class Step:
    """What one look at a running rollout decided: hold | advanced | promoted | rolled_back."""

    action: str
    rollout: Rollout
    evidence: dict[str, Any]


def metrics_dict(metrics: LiveMetrics) -> dict[str, Any]:
    return {
        "requests": metrics.requests,
        "error_rate": metrics.error_rate,
        "latency_p99_ms": metrics.latency_p99_ms,
        "feedback_score": metrics.feedback_score,
    }


def feedback_floor(production_score: float, max_drop: float) -> float:
    """The lowest acceptable candidate feedback score (mean of +1/-1 thumbs): its share of thumbs-up,
    (score + 1) / 2, may fall at most `max_drop` (a fraction) below production's."""
    up_share = (production_score + 1.0) / 2.0
    return 2.0 * (1.0 - max_drop) * up_share - 1.0


def check_guardrails(candidate: LiveMetrics, production: LiveMetrics, settings: LoopSettings) -> list[Breach]:
    """The breached guardrails of spec 9.3.2; none until the candidate served `guardrail_min_requests`."""
    if candidate.requests < settings.guardrail_min_requests:
        return []
    breaches = []
    if candidate.error_rate > settings.max_error_rate:
        breaches.append(Breach("error_rate", candidate.error_rate, settings.max_error_rate))
    if candidate.latency_p99_ms > settings.max_latency_p99_ms:
        breaches.append(Breach("latency_p99_ms", candidate.latency_p99_ms, settings.max_latency_p99_ms))
    if candidate.feedback_score is not None and production.feedback_score is not None:
        floor = feedback_floor(production.feedback_score, settings.max_feedback_drop)
        if candidate.feedback_score < floor:
            breaches.append(Breach("feedback_score", candidate.feedback_score, floor))
    return breaches


def stage_progress(rollout: Rollout, candidate: LiveMetrics, now: float, settings: LoopSettings) -> dict[str, Any]:
    """How far the rollout's stage is: hours and candidate requests so far against the stage's minimums."""
    stage = settings.stage(min(rollout.stage_index, len(settings.rollout_stages) - 1))
    return {"hours": max(0.0, now - rollout.stage_started_at) / 3600.0, "min_hours": stage.min_hours,
            "requests": candidate.requests, "min_requests": stage.min_requests}


def stage_complete(rollout: Rollout, candidate: LiveMetrics, now: float, settings: LoopSettings) -> bool:
    """A stage is done once it served its minimum of candidate requests and lasted its minimum of hours."""
    progress = stage_progress(rollout, candidate, now, settings)
    return bool(progress["requests"] >= progress["min_requests"] and progress["hours"] >= progress["min_hours"])


def _ended(change: Change) -> Rollout:
    if change.rollout is None:
        raise LLMOpsError("rollout: the promotion or rollback ended no rollout")
    return change.rollout


def stage_evidence(workspace: Workspace, rollout: Rollout, metrics: MetricsSource,
                   now: float) -> tuple[LiveMetrics, LiveMetrics, dict[str, Any]]:
    """(candidate's, production's live metrics since the stage began; the evidence a decision records)."""
    candidate = metrics(workspace, rollout.candidate, rollout.stage_started_at)
    production = metrics(workspace, rollout.production, rollout.stage_started_at)
    evidence: dict[str, Any] = {"candidate": metrics_dict(candidate), "production": metrics_dict(production),
                                "stage_progress": stage_progress(rollout, candidate, now, workspace.settings.loop)}
    return candidate, production, evidence


def advance_stage(workspace: Workspace, *, by: Actor, metrics: MetricsSource = version_metrics,
                  now: float | None = None) -> Rollout:
    """An operator's advance of the running rollout to its next stage now, whatever its minimums, with the live
    metrics as evidence; the last stage is finished by `promote`."""
    now = time.time() if now is None else now
    rollout = rollouts.current_rollout(workspace)
    if rollout is None:
        raise LLMOpsError("rollout: none is running")
    stages = workspace.settings.loop.rollout_stages
    index = rollout.stage_index + 1
    if index >= len(stages):
        raise LLMOpsError(f"rollout of {rollout.candidate}: at its last stage ({len(stages)} of loop.rollout_stages);"
                          " promote it instead")
    evidence = {"reason": "manual", **stage_evidence(workspace, rollout, metrics, now)[2]}
    return rollouts.advance(workspace, rollout, stages[index].traffic, evidence, by=by, now=now)


def step_rollout(workspace: Workspace, metrics: MetricsSource = version_metrics, now: float | None = None,
                 by: Actor = "loop") -> Step | None:
    """Look at the running rollout once: roll back on a breach, else advance or promote a completed stage.
    A rollout whose candidate is already `production` (an alias moved outside a rollout) is finished as promoted."""
    now = time.time() if now is None else now
    rollout = rollouts.current_rollout(workspace)
    if rollout is None:
        return None
    settings = workspace.settings.loop
    if registry.aliases(workspace).get("production") == rollout.candidate:
        done = rollouts.promote(workspace, by=by, reason="resumed after the alias swap", expected=rollout, now=now)
        return Step(PROMOTED, _ended(done), {})
    candidate, production, evidence = stage_evidence(workspace, rollout, metrics, now)
    breaches = check_guardrails(candidate, production, settings)
    if breaches:
        evidence["breaches"] = [b.__dict__ for b in breaches]
        summary = "; ".join(b.describe() for b in breaches)
        done = rollouts.rollback(workspace, by=by, reason=f"guardrail: {summary}", evidence=evidence,
                                 expected=rollout, now=now)
        return Step(ROLLED_BACK, _ended(done), evidence)
    if not stage_complete(rollout, candidate, now, settings):
        return Step("hold", rollout, evidence)
    index = rollout.stage_index + 1
    if index >= len(settings.rollout_stages):
        done = rollouts.promote(workspace, by=by, reason="all stages passed", evidence=evidence, expected=rollout,
                                now=now)
        return Step(PROMOTED, _ended(done), evidence)
    advanced = rollouts.advance(workspace, rollout, settings.rollout_stages[index].traffic, evidence, by=by,
                                now=now)
    return Step("advanced", advanced, evidence)
