"""Models tab (spec 6.4): the registry, each version with its lineage, aliases, datasets and status. Rollouts,
promotion and rollback are on the Loop & rollout tab (loop_tab.py), the leaderboard on the A/B arena tab.
"""

import gradio as gr
import pandas as pd

from llmops.models.registry import ModelVersion, aliases, list_versions
from llmops.ui.section import Section, frame, when
from llmops.workspace import Workspace

VERSION_COLUMNS = ("name", "stage", "status", "aliases", "lineage", "merged", "datasets", "path", "created")


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


def render(workspace: Workspace) -> Section:
    table = gr.Dataframe(label="Model versions", headers=list(VERSION_COLUMNS), interactive=False, wrap=True,
                         elem_id="models-table")
    refresh = gr.Button("Refresh", elem_id="models-refresh")
    gr.Markdown("Promote a version to production, start or roll back its rollout on the **Loop & rollout** tab; "
                "compare two versions on the **A/B arena** tab.", elem_id="models-hint")
    refresh.click(lambda: versions_table(workspace), outputs=table)
    return Section("models", lambda: [versions_table(workspace)], [table])
