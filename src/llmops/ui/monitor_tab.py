"""Monitor tab: per-version requests, error rate, latency p50/p99, feedback score, arena win rate and battles
(models/metrics.py `version_metrics`, the same numbers as `GET /v1/metrics`; Prometheus stays at `/metrics`), and
charts over time of requests, error rate, p99 latency and feedback score per version.
"""

import time
from collections.abc import Sequence
from typing import Any

import gradio as gr
import pandas as pd

from llmops.models.metrics import feedback_series, request_series, served_models, version_metrics
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


def series_frame(points: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A series of `models.metrics` as the charts' table (bucket times as timestamps)."""
    return frame([{**point, "time": pd.Timestamp(point["time"], unit="s")} for point in points], columns)


def snapshot(workspace: Workspace, window: str) -> list[Any]:
    seconds = WINDOWS.get(window, 0.0)
    since = time.time() - seconds if seconds else None
    series = series_frame(request_series(workspace, since), SERIES_COLUMNS)
    return [metrics_table(workspace, since), series, series, series,
            series_frame(feedback_series(workspace, since), FEEDBACK_COLUMNS)]


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
