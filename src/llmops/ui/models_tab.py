"""Models & rollout tab (spec 6.4, 9.3): registry with lineage and aliases, promote / rollback with the admin
token (through the gateway's admin routes), the current rollout stage and traffic share, the rollout history
with the guardrail metrics of each decision, and the arena leaderboard with bootstrap intervals.
"""

import json
from typing import Any

import gradio as gr
import pandas as pd

from llmops.errors import LLMOpsError
from llmops.models.registry import ModelVersion, aliases, list_versions
from llmops.models.rollouts import current_rollout, history
from llmops.serve.leaderboard import leaderboard
from llmops.ui.gateway_client import GatewayClient
from llmops.ui.section import Section, failed, frame, when
from llmops.workspace import Workspace

VERSION_COLUMNS = ("name", "stage", "status", "aliases", "lineage", "merged", "datasets", "path", "created")
EVENT_COLUMNS = ("time", "candidate", "event", "traffic", "requests", "error_rate", "latency_p99_ms",
                 "feedback_score", "evidence")
RATING_COLUMNS = ("model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties")


def lineage(version: ModelVersion, by_name: dict[str, ModelVersion]) -> str:
    """`base → parent → … → version`, following the registry's parent links."""
    chain, current, seen = [version.name], version, {version.name}
    while current.parent and current.parent in by_name and current.parent not in seen:
        current = by_name[current.parent]
        chain.append(current.name)
        seen.add(current.name)
    return " → ".join([current.base_model, *reversed(chain)])


def versions_table(workspace: Workspace) -> pd.DataFrame:
    versions = list_versions(workspace)
    by_name = {v.name: v for v in versions}
    names_of: dict[str, list[str]] = {}
    for alias, target in aliases(workspace).items():
        names_of.setdefault(target, []).append(alias)
    rows = [
        {"name": v.name, "stage": v.stage, "status": v.status, "aliases": ", ".join(sorted(names_of.get(v.name, []))),
         "lineage": lineage(v, by_name), "merged": "merged" if v.merged else "adapter",
         "datasets": ", ".join(str(d.get("name", "")) for d in v.datasets), "path": v.path,
         "created": when(v.created_at)}
        for v in versions
    ]
    return frame(rows, VERSION_COLUMNS)


def events_table(workspace: Workspace) -> pd.DataFrame:
    rows = []
    for event in reversed(history(workspace)):
        measured = event.evidence.get("candidate", event.evidence)
        measured = measured if isinstance(measured, dict) else {}
        rows.append({"time": when(event.created_at), "candidate": event.candidate, "event": event.event,
                     "traffic": event.traffic, **{k: measured.get(k) for k in EVENT_COLUMNS[4:8]},
                     "evidence": json.dumps(event.evidence, ensure_ascii=False)[:400]})
    return frame(rows, EVENT_COLUMNS)


def rollout_state(workspace: Workspace) -> tuple[str, float]:
    """(description of the running rollout, its candidate's traffic share)."""
    running = current_rollout(workspace)
    production = aliases(workspace).get("production", "none")
    if running is None:
        return f"production: **{production}** · no rollout running", 0.0
    return (f"production: **{running.production}** · candidate **{running.candidate}** at stage "
            f"{running.stage_index + 1} since {when(running.stage_started_at)}", running.traffic)


def ratings_table(workspace: Workspace) -> pd.DataFrame:
    return frame([r.to_dict() for r in leaderboard(workspace)], RATING_COLUMNS)


def snapshot(workspace: Workspace) -> list[Any]:
    table = versions_table(workspace)
    state, traffic = rollout_state(workspace)
    return [table, gr.update(choices=["", *table["name"]]), state, traffic, events_table(workspace),
            ratings_table(workspace)]


def _admin_panel(workspace: Workspace, client: GatewayClient | None, outputs: list[Any]) -> None:
    with gr.Row():
        model = gr.Dropdown(label="Model to promote (empty: the running rollout's candidate)", choices=[""],
                            value="", allow_custom_value=True)
        token = gr.Textbox(label="Admin token (.llmops/admin_token)", type="password")
        promote_btn = gr.Button("Promote", variant="primary")
        rollback_btn = gr.Button("Roll back", variant="stop")
    result = gr.Markdown()
    outputs.insert(1, model)

    async def promote(name: str, secret: str) -> list[Any]:
        try:
            if client is None:
                raise LLMOpsError("promote needs the gateway (`llmops serve` or `llmops ui`)")
            done = await client.promote(secret, name or "")
        except LLMOpsError as exc:
            return [failed(exc), *snapshot(workspace)]
        return [f"✅ promoted: {done}", *snapshot(workspace)]

    async def rollback(secret: str) -> list[Any]:
        try:
            if client is None:
                raise LLMOpsError("rollback needs the gateway (`llmops serve` or `llmops ui`)")
            done = await client.rollback(secret)
        except LLMOpsError as exc:
            return [failed(exc), *snapshot(workspace)]
        return [f"✅ rolled back: {done}", *snapshot(workspace)]

    promote_btn.click(promote, inputs=[model, token], outputs=[result, *outputs])
    rollback_btn.click(rollback, inputs=token, outputs=[result, *outputs])


def render(workspace: Workspace, client: GatewayClient | None) -> Section:
    table = gr.Dataframe(label="Model versions", headers=list(VERSION_COLUMNS), interactive=False, wrap=True,
                         elem_id="models-table")
    with gr.Row():
        state = gr.Markdown()
        traffic = gr.Slider(label="Candidate traffic share", minimum=0, maximum=1, interactive=False)
    outputs: list[Any] = [table, state, traffic]
    _admin_panel(workspace, client, outputs)
    events = gr.Dataframe(label="Rollout history (guardrail metrics per decision)", headers=list(EVENT_COLUMNS),
                          interactive=False, wrap=True)
    ratings = gr.Dataframe(label="Leaderboard (Bradley–Terry, 95% bootstrap interval)",
                           headers=list(RATING_COLUMNS), interactive=False)
    outputs += [events, ratings]
    refresh = gr.Button("Refresh")
    refresh.click(lambda: snapshot(workspace), outputs=outputs)
    return Section("models", lambda: snapshot(workspace), outputs)
