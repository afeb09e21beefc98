"""Gradual rollout (spec 6.4, 9.3): canary stages, guardrails, automatic rollback, promotion.

The state of a rollout is one row of the `rollouts` table (the gateway's router reads candidate, production
and traffic of the running one), so a restarted process resumes the same stage. Every decision is a row
of `rollout_events` with its evidence. A stage is judged on live per-version metrics measured since the
stage began: any guardrail breach (spec 9.3.2: error rate, p99 latency, feedback score below production's)
rolls back at once: traffic 0, `production` unchanged. A stage advances once it has served
`stage_min_requests` candidate requests and lasted `stage_min_minutes`; passing the last stage promotes:
`previous` ← old production, `production` ← candidate.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, select, update

from llmops import db
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.serve.metrics import version_metrics
from llmops.settings import LoopSettings
from llmops.workspace import Workspace

RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled_back"


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
class Rollout:
    candidate: str
    production: str
    stage_index: int
    traffic: float
    status: str
    started_at: float
    stage_started_at: float


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


@dataclass(frozen=True)
class Event:
    id: int
    created_at: float
    candidate: str
    event: str
    traffic: float
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


def stage_complete(rollout: Rollout, candidate: LiveMetrics, now: float, settings: LoopSettings) -> bool:
    """A stage is done once it served enough candidate requests and lasted long enough."""
    minutes = (now - rollout.stage_started_at) / 60.0
    return candidate.requests >= settings.stage_min_requests and minutes >= settings.stage_min_minutes


def _row(row: Any) -> Rollout:
    return Rollout(**dict(row._mapping))


def _record(conn: Connection, now: float, candidate: str, event: str, traffic: float, evidence: dict[str, Any]) -> None:
    conn.execute(insert(db.rollout_events).values(
        created_at=now, candidate=candidate, event=event, traffic=traffic, evidence=evidence
    ))


def record_event(workspace: Workspace, candidate: str, event: str, evidence: dict[str, Any],
                 traffic: float = 0.0, now: float | None = None) -> None:
    """A decision outside a rollout's stages (e.g. the promotion gate) with its evidence."""
    with workspace.engine.begin() as conn:
        _record(conn, time.time() if now is None else now, candidate, event, traffic, evidence)


def current_rollout(workspace: Workspace) -> Rollout | None:
    """The running rollout, if any."""
    with workspace.engine.connect() as conn:
        row = conn.execute(select(db.rollouts).where(db.rollouts.c.status == RUNNING)).first()
    return None if row is None else _row(row)


def latest_rollout(workspace: Workspace) -> Rollout | None:
    """The most recently started rollout, whatever its status."""
    with workspace.engine.connect() as conn:
        row = conn.execute(select(db.rollouts).order_by(db.rollouts.c.started_at.desc())).first()
    return None if row is None else _row(row)


def history(workspace: Workspace, candidate: str | None = None) -> list[Event]:
    """Every recorded decision, oldest first (of one candidate when given)."""
    query = select(db.rollout_events).order_by(db.rollout_events.c.id)
    if candidate:
        query = query.where(db.rollout_events.c.candidate == candidate)
    with workspace.engine.connect() as conn:
        return [Event(**dict(row._mapping)) for row in conn.execute(query)]


def start_rollout(workspace: Workspace, candidate: str, evidence: dict[str, Any] | None = None,
                  now: float | None = None) -> Rollout:
    """Begin the first stage for `candidate` against the current production version."""
    now = time.time() if now is None else now
    stages = workspace.settings.loop.rollout_stages
    if not stages:
        raise LLMOpsError("loop.rollout_stages: empty; at least one traffic share is needed")
    registry.get_version(workspace, candidate)
    production = registry.aliases(workspace).get("production")
    if production is None:
        raise LLMOpsError("rollout: no `production` alias is set (see `llmops models promote`)")
    if production == candidate:
        raise LLMOpsError(f"rollout: {candidate} is already production")
    running = current_rollout(workspace)
    if running is not None:
        raise LLMOpsError(f"rollout: {running.candidate} is still rolling out (see `llmops rollout status`)")
    rollout = Rollout(candidate, production, 0, stages[0], RUNNING, now, now)
    registry.set_alias(workspace, "candidate", candidate)
    registry.set_status(workspace, candidate, "candidate")
    with workspace.engine.begin() as conn:
        conn.execute(delete(db.rollouts).where(db.rollouts.c.candidate == candidate))
        conn.execute(insert(db.rollouts).values(**rollout.__dict__))
        _record(conn, now, candidate, "started", rollout.traffic,
                {"production": production, "stages": stages, **(evidence or {})})
    return rollout


def _require_running(workspace: Workspace) -> Rollout:
    rollout = current_rollout(workspace)
    if rollout is None:
        raise LLMOpsError("rollout: none is running (see `llmops rollout history`)")
    return rollout


def rollback_rollout(workspace: Workspace, reason: str = "manual", evidence: dict[str, Any] | None = None,
                     now: float | None = None) -> Rollout:
    """Stop the running rollout: candidate traffic 0, `production` untouched, the decision recorded."""
    now = time.time() if now is None else now
    rollout = _require_running(workspace)
    done = Rollout(rollout.candidate, rollout.production, rollout.stage_index, 0.0, ROLLED_BACK,
                   rollout.started_at, rollout.stage_started_at)
    with workspace.engine.begin() as conn:
        conn.execute(update(db.rollouts).where(db.rollouts.c.candidate == rollout.candidate)
                     .values(traffic=0.0, status=ROLLED_BACK))
        _record(conn, now, rollout.candidate, "rolled_back", 0.0,
                {"reason": reason, "stage": rollout.stage_index, "stage_traffic": rollout.traffic, **(evidence or {})})
        conn.execute(delete(db.aliases).where((db.aliases.c.alias == "candidate")
                                              & (db.aliases.c.model == rollout.candidate)))
    registry.set_status(workspace, rollout.candidate, "rejected")
    return done


def _finish_promotion(workspace: Workspace, rollout: Rollout, evidence: dict[str, Any], now: float) -> Rollout:
    with workspace.engine.begin() as conn:
        conn.execute(update(db.rollouts).where(db.rollouts.c.candidate == rollout.candidate)
                     .values(traffic=1.0, status=PROMOTED))
        _record(conn, now, rollout.candidate, "promoted", 1.0, {"previous": rollout.production, **evidence})
    registry.set_status(workspace, rollout.candidate, "production")
    registry.set_status(workspace, rollout.production, "archived")
    return Rollout(rollout.candidate, rollout.production, rollout.stage_index, 1.0, PROMOTED,
                   rollout.started_at, rollout.stage_started_at)


def promote_rollout(workspace: Workspace, reason: str = "manual", evidence: dict[str, Any] | None = None,
                    now: float | None = None) -> Rollout:
    """Make the running candidate production (`previous` ← old production) and close the rollout.

    The alias swap comes first; if the process dies before the rollout row is closed, the next
    `step_rollout` sees `production` already on the candidate and finishes the promotion."""
    now = time.time() if now is None else now
    rollout = _require_running(workspace)
    registry.promote(workspace, rollout.candidate)
    return _finish_promotion(workspace, rollout, {"reason": reason, **(evidence or {})}, now)


def _advance(workspace: Workspace, rollout: Rollout, evidence: dict[str, Any], now: float) -> Rollout:
    index = rollout.stage_index + 1
    traffic = workspace.settings.loop.rollout_stages[index]
    with workspace.engine.begin() as conn:
        conn.execute(update(db.rollouts).where(db.rollouts.c.candidate == rollout.candidate)
                     .values(stage_index=index, traffic=traffic, stage_started_at=now))
        _record(conn, now, rollout.candidate, "advanced", traffic, {"from_stage": rollout.stage_index, **evidence})
    return Rollout(rollout.candidate, rollout.production, index, traffic, RUNNING, rollout.started_at, now)


def step_rollout(workspace: Workspace, metrics: MetricsSource = version_metrics,
                 now: float | None = None) -> Step | None:
    """Look at the running rollout once: roll back on a breach, else advance or promote a completed stage."""
    now = time.time() if now is None else now
    rollout = current_rollout(workspace)
    if rollout is None:
        return None
    settings = workspace.settings.loop
    if registry.aliases(workspace).get("production") == rollout.candidate:
        done = _finish_promotion(workspace, rollout, {"reason": "resumed after the alias swap"}, now)
        return Step(PROMOTED, done, {})
    candidate = metrics(workspace, rollout.candidate, rollout.stage_started_at)
    production = metrics(workspace, rollout.production, rollout.stage_started_at)
    evidence: dict[str, Any] = {"candidate": metrics_dict(candidate), "production": metrics_dict(production)}
    breaches = check_guardrails(candidate, production, settings)
    if breaches:
        evidence["breaches"] = [b.__dict__ for b in breaches]
        summary = "; ".join(b.describe() for b in breaches)
        return Step(ROLLED_BACK, rollback_rollout(workspace, f"guardrail: {summary}", evidence, now), evidence)
    if not stage_complete(rollout, candidate, now, settings):
        return Step("hold", rollout, evidence)
    if rollout.stage_index + 1 >= len(settings.rollout_stages):
        return Step(PROMOTED, promote_rollout(workspace, "all stages passed", evidence, now), evidence)
    return Step("advanced", _advance(workspace, rollout, evidence, now), evidence)


def revert_production(workspace: Workspace, reason: str = "manual", now: float | None = None) -> str:
    """After a promotion: `production` back to `previous`, recorded as an event. Returns the restored version."""
    demoted = registry.aliases(workspace).get("production", "")
    restored = registry.rollback(workspace)
    record_event(workspace, demoted or restored, "reverted", {"reason": reason, "production": restored,
                                                               "demoted": demoted}, now=now)
    return restored
