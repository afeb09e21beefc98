"""Per-version serving metrics from the `requests`, `feedback` and `battles` tables.

What the rollout guardrails (loop/rollout.py), the monitor and the UI read, below all three; the gateway
writes the rows (serve/state.py) and keeps its live Prometheus counters in serve/metrics.py.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select

from llmops import db
from llmops.votes import parse_vote
from llmops.workspace import Workspace


@dataclass(frozen=True)
class VersionMetrics:
    model: str
    requests: int
    errors: int
    error_rate: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    tokens_per_s: float
    feedback_score: float | None
    win_rate: float | None  # over `battles`; None without any (a battle of a version against itself is none)
    battles: int  # voted arena battles against another version

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0–100) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _request_stats(conn: Connection, model: str, since: float | None) -> tuple[int, int, list[float], float]:
    table = db.requests
    query = select(table.c.ok, table.c.latency_ms, table.c.completion_tokens).where(table.c.model == model)
    if since is not None:
        query = query.where(table.c.created_at >= since)
    rows = conn.execute(query).all()
    errors = sum(1 for ok, _, _ in rows if not ok)
    ok_rows = [(latency, tokens) for ok, latency, tokens in rows if ok]
    seconds = sum(latency for latency, _ in ok_rows) / 1000
    tokens_per_s = sum(tokens for _, tokens in ok_rows) / seconds if seconds > 0 else 0.0
    return len(rows), errors, [latency for _, latency, _ in rows], tokens_per_s


def _feedback_score(conn: Connection, model: str, since: float | None) -> float | None:
    query = select(func.avg(db.feedback.c.score)).where(db.feedback.c.model == model)
    if since is not None:
        query = query.where(db.feedback.c.created_at >= since)
    value = conn.execute(query).scalar()
    return None if value is None else float(value)


def _win_rate(conn: Connection, model: str, since: float | None) -> tuple[float | None, int]:
    """(the share of voted battles against another version that `model` won, ties and both_bad counting half;
    how many such battles)."""
    table = db.battles
    query = select(table.c.model_a, table.c.model_b, table.c.vote).where(
        table.c.vote.is_not(None), or_(table.c.model_a == model, table.c.model_b == model),
        table.c.model_a != table.c.model_b,
    )
    if since is not None:
        query = query.where(table.c.voted_at >= since)
    scores_a = [(a, parse_vote(vote, "battles.vote").score_a) for a, _, vote in conn.execute(query)]
    scores = [score if a == model else 1 - score for a, score in scores_a]
    return (sum(scores) / len(scores) if scores else None), len(scores)


def version_metrics(workspace: Workspace, model: str, since: float | None = None) -> VersionMetrics:
    """Requests, errors, latency percentiles, decode speed, feedback score and arena win rate of `model`."""
    with workspace.engine.connect() as conn:
        requests, errors, latencies, tokens_per_s = _request_stats(conn, model, since)
        feedback = _feedback_score(conn, model, since)
        win_rate, battles = _win_rate(conn, model, since)
    return VersionMetrics(
        model=model, requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
        latency_p50_ms=percentile(latencies, 50), latency_p95_ms=percentile(latencies, 95),
        latency_p99_ms=percentile(latencies, 99), tokens_per_s=tokens_per_s, feedback_score=feedback,
        win_rate=win_rate, battles=battles,
    )


def served_models(workspace: Workspace) -> list[str]:
    """Every version that has served a request or been in a battle."""
    with workspace.engine.connect() as conn:
        names = set(conn.execute(select(db.requests.c.model).distinct()).scalars())
        names |= set(conn.execute(select(db.battles.c.model_a).distinct()).scalars())
        names |= set(conn.execute(select(db.battles.c.model_b).distinct()).scalars())
    return sorted(names)


def bucketed(rows: Sequence[Any], summary: Callable[[list[Any]], dict[str, Any]],
             buckets: int) -> list[dict[str, Any]]:
    """`rows` (with .model and .created_at) grouped per time bucket and version, oldest first: each group's
    bucket start (`time`, epoch seconds), `model` and `summary`."""
    if not rows:
        return []
    start, end = min(r.created_at for r in rows), max(r.created_at for r in rows)
    width = max((end - start) / buckets, 1.0)
    groups: dict[tuple[float, str], list[Any]] = {}
    for row in rows:
        bucket = start + (row.created_at - start) // width * width
        groups.setdefault((bucket, row.model), []).append(row)
    return [{"time": bucket, "model": model, **summary(items)} for (bucket, model), items in sorted(groups.items())]


def _request_summary(items: list[Any]) -> dict[str, Any]:
    latencies = [r.latency_ms for r in items]
    return {"requests": len(items), "error_rate": sum(not r.ok for r in items) / len(items),
            "latency_p50_ms": percentile(latencies, 50), "latency_p99_ms": percentile(latencies, 99)}


def _feedback_summary(items: list[Any]) -> dict[str, Any]:
    return {"thumbs": len(items), "feedback_score": sum(r.score for r in items) / len(items)}


def _rows_since(workspace: Workspace, query: Any, created_at: Any, since: float | None) -> list[Any]:
    if since is not None:
        query = query.where(created_at >= since)
    with workspace.engine.connect() as conn:
        return list(conn.execute(query).all())


def request_series(workspace: Workspace, since: float | None = None, buckets: int = 30) -> list[dict[str, Any]]:
    """Requests per time bucket and version: count, error rate, latency p50/p99 (the monitor's charts)."""
    table = db.requests
    query = select(table.c.model, table.c.created_at, table.c.latency_ms, table.c.ok)
    return bucketed(_rows_since(workspace, query, table.c.created_at, since), _request_summary, buckets)


def feedback_series(workspace: Workspace, since: float | None = None, buckets: int = 30) -> list[dict[str, Any]]:
    """Thumbs per time bucket and version: how many, and their mean score (+1 up, -1 down)."""
    table = db.feedback
    query = select(table.c.model, table.c.created_at, table.c.score)
    return bucketed(_rows_since(workspace, query, table.c.created_at, since), _feedback_summary, buckets)
