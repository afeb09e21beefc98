"""Monitor tab: per-version requests, error rate, latency p50/p99, feedback score, arena win rate and battles
(models/metrics.py `version_metrics`, the same numbers as `GET /v1/metrics`; Prometheus stays at `/metrics`), and
charts over time of requests, error rate, p99 latency and feedback score per version.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
import pandas as pd
from sqlalchemy import select

from llmops import db
from llmops.models.metrics import percentile, served_models, version_metrics
from llmops.ui.section import Section, frame
from llmops.workspace import Workspace

METRIC_COLUMNS = ("model", "requests", "errors", "error_rate", "latency_p50_ms", "latency_p99_ms",
                  "tokens_per_s", "feedback_score", "win_rate", "battles")
SERIES_COLUMNS = ("time", "model", "requests", "error_rate", "latency_p50_ms", "latency_p99_ms")
FEEDBACK_COLUMNS = ("time", "model", "thumbs", "feedback_score")
WINDOWS = {"last hour": 3600.0, "last day": 86400.0, "all time": 0.0}


def metrics_table(workspace: Workspace, since: float | None) -> pd.DataFrame:
    """One row per served version, rounded; a metric without data (no feedback, no battles yet) is an empty cell."""
    rows = [version_metrics(workspace, name, since).to_dict() for name in served_models(workspace)]
    table = frame(rows, METRIC_COLUMNS).round(3)
    return table.astype(object).where(table.notna(), "")


def bucketed(rows: Sequence[Any], summary: Callable[[list[Any]], dict[str, Any]], columns: Sequence[str],
             buckets: int) -> pd.DataFrame:
    """`rows` (with .model and .created_at) grouped per time bucket and version, each group's `summary`."""
    if not rows:
        return frame([], columns)
    start, end = min(r.created_at for r in rows), max(r.created_at for r in rows)
    width = max((end - start) / buckets, 1.0)
    groups: dict[tuple[float, str], list[Any]] = {}
    for row in rows:
        bucket = start + (row.created_at - start) // width * width
        groups.setdefault((bucket, row.model), []).append(row)
    points = [{"time": pd.Timestamp(bucket, unit="s"), "model": model, **summary(items)}
              for (bucket, model), items in sorted(groups.items())]
    return frame(points, columns)


def _request_summary(items: list[Any]) -> dict[str, Any]:
    latencies = [r.latency_ms for r in items]
    return {"requests": len(items), "error_rate": sum(not r.ok for r in items) / len(items),
            "latency_p50_ms": percentile(latencies, 50), "latency_p99_ms": percentile(latencies, 99)}


def request_series(workspace: Workspace, since: float | None, buckets: int = 30) -> pd.DataFrame:
    """Requests per time bucket and version: count, error rate, latency p50/p99 (for the charts)."""
    query = select(db.requests.c.model, db.requests.c.created_at, db.requests.c.latency_ms, db.requests.c.ok)
    return bucketed(_select(workspace, query, db.requests.c.created_at, since), _request_summary, SERIES_COLUMNS,
                    buckets)


def feedback_series(workspace: Workspace, since: float | None, buckets: int = 30) -> pd.DataFrame:
    """Thumbs per time bucket and version: how many, and their mean score (+1 up, -1 down)."""
    query = select(db.feedback.c.model, db.feedback.c.created_at, db.feedback.c.score)
    return bucketed(_select(workspace, query, db.feedback.c.created_at, since),
                    lambda items: {"thumbs": len(items), "feedback_score": sum(r.score for r in items) / len(items)},
                    FEEDBACK_COLUMNS, buckets)


def _select(workspace: Workspace, query: Any, created_at: Any, since: float | None) -> list[Any]:
    if since is not None:
        query = query.where(created_at >= since)
    with workspace.engine.connect() as conn:
        return list(conn.execute(query).all())


def snapshot(workspace: Workspace, window: str) -> list[Any]:
    seconds = WINDOWS.get(window, 0.0)
    since = time.time() - seconds if seconds else None
    series = request_series(workspace, since)
    return [metrics_table(workspace, since), series, series, series, feedback_series(workspace, since)]


def render(workspace: Workspace) -> Section:
    with gr.Row():
        window = gr.Radio(label="Window", choices=list(WINDOWS), value="all time", elem_id="monitor-window")
        refresh = gr.Button("Refresh", elem_id="monitor-refresh")
    table = gr.Dataframe(label="Per version", headers=list(METRIC_COLUMNS), interactive=False,
                         elem_id="monitor-table")
    with gr.Row():
        requests = gr.LinePlot(x="time", y="requests", color="model", title="requests per interval")
        errors = gr.LinePlot(x="time", y="error_rate", color="model", title="error rate")
    with gr.Row():
        latency = gr.LinePlot(x="time", y="latency_p99_ms", color="model", title="latency p99 (ms)")
        feedback = gr.LinePlot(x="time", y="feedback_score", color="model", title="feedback score (+1 up, -1 down)")
    outputs = [table, requests, errors, latency, feedback]
    refresh.click(lambda w: snapshot(workspace, w), inputs=window, outputs=outputs)
    window.change(lambda w: snapshot(workspace, w), inputs=window, outputs=outputs)
    return Section("monitor", lambda: snapshot(workspace, "all time"), outputs)
