"""Rollout state (spec 6.4, 9.3) beside the aliases it moves: the rollout rows, the candidate's traffic share, and
every decision as a row of `rollout_events` with who made it (`by`: cli, admin, ui, loop, demo), why and its
evidence.

The one `promote` and the one `rollback` live here; the CLI, the admin API (and the UI through it), the loop and
the demo all call them. Each state change is one `db.write_transaction` holding its event, serialised with every
other across processes (SQLite's write lock; on Postgres the advisory lock `db.ROLLOUT_LOCK`): it reads the
running rollout inside that transaction, ends or changes it with a conditional `UPDATE … WHERE status = 'running'`
whose row count is checked, moves aliases and statuses, and records the event; all of it or nothing. Of two
processes finishing the same rollout only one succeeds; the other gets an LLMOpsError and records nothing.
When to advance, promote or roll back is the loop's policy (loop/rollout.py); this module only applies it.
"""

import time
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from sqlalchemy import Connection, delete, func, insert, select, update

from llmops import db
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.workspace import Workspace

RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled_back"
Actor = Literal["cli", "admin", "ui", "loop", "demo"]
ACTORS: tuple[str, ...] = get_args(Actor)


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
class Event:
    id: int
    created_at: float
    candidate: str
    event: str
    traffic: float
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """What a promote or rollback did: `production` after it, the version it displaced from production
    (promote: the new `previous`; rollback without a rollout: the demoted one), and the rollout it ended."""

    production: str
    displaced: str | None
    rollout: Rollout | None


def _row(row: Any) -> Rollout:
    return Rollout(**dict(row._mapping))


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _who(by: str, reason: str | None, evidence: dict[str, Any] | None) -> dict[str, Any]:
    if by not in ACTORS:
        raise LLMOpsError(f"rollout event: by={by!r}, expected one of {', '.join(ACTORS)}")
    return {"by": by, **({} if reason is None else {"reason": reason}), **(evidence or {})}


def _record(conn: Connection, now: float, candidate: str, event: str, traffic: float, evidence: dict[str, Any]) -> None:
    conn.execute(insert(db.rollout_events).values(
        created_at=now, candidate=candidate, event=event, traffic=traffic, evidence=evidence
    ))


def _running(conn: Connection) -> Rollout | None:
    row = conn.execute(select(db.rollouts).where(db.rollouts.c.status == RUNNING)).first()
    return None if row is None else _row(row)


def current_rollout(workspace: Workspace) -> Rollout | None:
    """The running rollout, if any (the gateway's router reads it on every request for `production`)."""
    with workspace.engine.connect() as conn:
        return _running(conn)


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


def reject(workspace: Workspace, candidate: str, event: str, evidence: dict[str, Any], *, by: Actor,
           now: float | None = None) -> None:
    """A candidate turned down before any rollout (e.g. by the promotion gate): status `rejected` and the event."""
    with db.write_transaction(workspace.engine, db.ROLLOUT_LOCK) as conn:
        registry.set_status_in(conn, candidate, "rejected")
        _record(conn, _now(now), candidate, event, 0.0, _who(by, None, evidence))


def note(workspace: Workspace, candidate: str, event: str, evidence: dict[str, Any], *, by: Actor,
         now: float | None = None) -> None:
    """An event about a candidate that changes no state (e.g. the loop's training attempt that made it)."""
    with workspace.engine.begin() as conn:
        _record(conn, _now(now), candidate, event, 0.0, _who(by, None, evidence))


def _check_startable(conn: Connection, candidate: str) -> str:
    registry.get_in(conn, candidate)
    production = registry.alias_target(conn, "production")
    if production is None:
        raise LLMOpsError("rollout: no `production` alias is set (see `llmops models promote`)")
    if production == candidate:
        raise LLMOpsError(f"rollout: {candidate} is already production")
    running = _running(conn)
    if running is not None:
        raise LLMOpsError(f"rollout: {running.candidate} is still rolling out (see `llmops rollout status`)")
    return production


def start_rollout(workspace: Workspace, candidate: str, evidence: dict[str, Any] | None = None, *, by: Actor,
                  now: float | None = None) -> Rollout:
    """Begin the first stage of `loop.rollout_stages` for `candidate` against the current production version."""
    now = _now(now)
    stages = workspace.settings.loop.traffic_shares
    if not stages:
        raise LLMOpsError("loop.rollout_stages: empty; at least one traffic share is needed")
    with db.write_transaction(workspace.engine, db.ROLLOUT_LOCK) as conn:
        production = _check_startable(conn, candidate)
        rollout = Rollout(candidate, production, 0, stages[0], RUNNING, now, now)
        registry.set_alias_in(conn, "candidate", candidate)
        registry.set_status_in(conn, candidate, "candidate")
        conn.execute(delete(db.rollouts).where(db.rollouts.c.candidate == candidate))
        conn.execute(insert(db.rollouts).values(**rollout.__dict__))
        running = conn.execute(
            select(func.count()).select_from(db.rollouts).where(db.rollouts.c.status == RUNNING)).scalar()
        if running != 1:
            raise LLMOpsError(f"rollout: another rollout started while {candidate}'s did; nothing changed")
        _record(conn, now, candidate, "started", rollout.traffic,
                {"production": production, "stages": stages, **_who(by, None, evidence)})
    return rollout


def _change_running(conn: Connection, rollout: Rollout, **values: Any) -> Rollout:
    """UPDATE the rollout row only while it is still running (and at the stage read); else nothing changes."""
    rows = db.rollouts.c
    result = conn.execute(update(db.rollouts).where(
        (rows.candidate == rollout.candidate) & (rows.status == RUNNING) & (rows.stage_index == rollout.stage_index)
    ).values(**values))
    if result.rowcount != 1:
        raise LLMOpsError(f"rollout of {rollout.candidate}: no longer running at stage {rollout.stage_index + 1} "
                          "(finished or changed by another process); nothing changed")
    return replace(rollout, **values)


def _running_as_expected(conn: Connection, expected: Rollout | None) -> Rollout | None:
    running = _running(conn)
    if expected is not None and (running is None or running.candidate != expected.candidate):
        raise LLMOpsError(f"rollout of {expected.candidate}: no longer running (finished by another process); "
                          "nothing changed")
    return running


def set_traffic(workspace: Workspace, traffic: float, *, by: Actor, reason: str = "manual",
                now: float | None = None) -> Rollout:
    """Override the running rollout's candidate traffic share (the router reads it on the next request)."""
    if not 0.0 <= traffic <= 1.0:
        raise LLMOpsError(f"traffic {traffic!r}: expected a share between 0 and 1")
    with db.write_transaction(workspace.engine, db.ROLLOUT_LOCK) as conn:
        running = _running(conn)
        if running is None:
            raise LLMOpsError("rollout: none is running")
        changed = _change_running(conn, running, traffic=traffic)
        _record(conn, _now(now), running.candidate, "traffic_set", traffic, _who(by, reason, None))
    return changed


def advance(workspace: Workspace, rollout: Rollout, traffic: float, evidence: dict[str, Any], *, by: Actor,
            now: float | None = None) -> Rollout:
    """Move `rollout` (as read by the caller) to its next stage with `traffic`; fails when it moved on meanwhile."""
    now = _now(now)
    with db.write_transaction(workspace.engine, db.ROLLOUT_LOCK) as conn:
        changed = _change_running(conn, rollout, stage_index=rollout.stage_index + 1, traffic=traffic,
                                  stage_started_at=now)
        _record(conn, now, rollout.candidate, "advanced", traffic,
                {"from_stage": rollout.stage_index, **_who(by, None, evidence)})
    return changed


def _promote_candidate(conn: Connection, rollout: Rollout, evidence: dict[str, Any], now: float) -> Change:
    registry.move_production_in(conn, rollout.candidate)
    done = _change_running(conn, rollout, status=PROMOTED, traffic=1.0)
    registry.set_status_in(conn, rollout.candidate, "production")
    registry.set_status_in(conn, rollout.production, "archived")
    _record(conn, now, rollout.candidate, "promoted", 1.0, {"previous": rollout.production, **evidence})
    return Change(rollout.candidate, rollout.production, done)


def promote(workspace: Workspace, name: str = "", *, by: Actor, reason: str = "manual",
            evidence: dict[str, Any] | None = None, expected: Rollout | None = None,
            now: float | None = None) -> Change:
    """The one promotion. With a rollout running (and no `name`, or the candidate's): the candidate becomes
    production (`previous` ← old production), the rollout ends as promoted. With none running: `production` ←
    `name` (a version or an alias), the old production becomes `previous`. `expected`: the running rollout the
    caller read; the call fails when that one is no longer running. One transaction, with its event."""
    now = _now(now)
    why = _who(by, reason, evidence)
    with db.write_transaction(workspace.engine, db.ROLLOUT_LOCK) as conn:
        running = _running_as_expected(conn, expected)
        target = registry.resolve_in(conn, name).name if name else ""
        if running is not None and target in ("", running.candidate):
            return _promote_candidate(conn, running, why, now)
        if running is not None:
            raise LLMOpsError(f"promote: {running.candidate} is rolling out; promote it, or roll it back first "
                              "(`llmops rollout rollback`)")
        if not target:
            raise LLMOpsError("promote: no rollout is running; name the model to promote")
        previous = registry.move_production_in(conn, target)
        _record(conn, now, target, "promoted", 1.0, {"previous": previous, **why})
    return Change(target, previous, None)


def _end_rollout(conn: Connection, rollout: Rollout, evidence: dict[str, Any], now: float) -> Change:
    done = _change_running(conn, rollout, status=ROLLED_BACK, traffic=0.0)
    registry.drop_alias_in(conn, "candidate", rollout.candidate)
    registry.set_status_in(conn, rollout.candidate, "rejected")
    _record(conn, now, rollout.candidate, "rolled_back", 0.0,
            {"stage": rollout.stage_index, "stage_traffic": rollout.traffic, **evidence})
    return Change(registry.alias_target(conn, "production") or rollout.production, None, done)


def rollback(workspace: Workspace, *, by: Actor, reason: str = "manual", evidence: dict[str, Any] | None = None,
             expected: Rollout | None = None, now: float | None = None) -> Change:
    """The one rollback. With a rollout running: it ends as rolled back (candidate traffic 0, status `rejected`,
    `production` untouched). With none: `production` moves back to `previous` (recorded as `reverted`).
    `expected`: as for `promote`. One transaction, with its event."""
    now = _now(now)
    why = _who(by, reason, evidence)
    with db.write_transaction(workspace.engine, db.ROLLOUT_LOCK) as conn:
        running = _running_as_expected(conn, expected)
        if running is not None:
            return _end_rollout(conn, running, why, now)
        demoted = registry.alias_target(conn, "production")
        restored = registry.restore_previous_in(conn)
        _record(conn, now, demoted or restored, "reverted", 0.0, {"production": restored, "demoted": demoted, **why})
    return Change(restored, demoted, None)


EVIDENCE_GUARDRAILS = ("requests", "error_rate", "latency_p99_ms", "feedback_score")
EVIDENCE_EVALUATION = ("win_rate", "ci_low", "ci_high")
EVIDENCE_COLUMNS = ("by", "reason", *EVIDENCE_GUARDRAILS, *EVIDENCE_EVALUATION, "breaches")
_DIGITS = {"error_rate": 4, "latency_p99_ms": 1, "feedback_score": 3, "win_rate": 3, "ci_low": 3, "ci_high": 3}


def _part(evidence: dict[str, Any], key: str) -> dict[str, Any]:
    found = evidence.get(key)
    return found if isinstance(found, dict) else {}


def evidence_columns(evidence: dict[str, Any]) -> dict[str, Any]:
    """An event's evidence for people, one value per EVIDENCE_COLUMNS: who and why, the candidate's guardrail
    metrics, the gate's evaluation and the breached metrics, rounded; "" where the event has none."""
    measured, evaluation = _part(evidence, "candidate"), _part(evidence, "evaluation")
    breaches = evidence.get("breaches")
    row = {"by": evidence.get("by", ""), "reason": evidence.get("reason", ""),
           **{name: measured.get(name) for name in EVIDENCE_GUARDRAILS},
           **{name: evaluation.get(name) for name in EVIDENCE_EVALUATION},
           "breaches": "; ".join(str(b.get("metric")) for b in breaches if isinstance(b, dict))
           if isinstance(breaches, list) else ""}
    return {name: "" if value is None else
            round(value, _DIGITS[name]) if name in _DIGITS and isinstance(value, int | float) else value
            for name, value in row.items()}
