"""The web UI: one Gradio Blocks page with the tabs of spec section 8, mounted in the gateway's FastAPI app.

Every tab is built by a small function that returns a `Section`; on each page load, and whenever a tab is
opened, the sections' `load` functions re-read the workspace and the database (spec 5.2 `resume`), so a
reload shows a running training's live status again. Actions call the library (or, for serving state,
the gateway's routes).
"""

import gradio as gr
from fastapi import FastAPI

from llmops.train.runner import LLaMAFactoryTrainer
from llmops.ui import arena_tab, data_tab, models_tab, monitor_tab, train_tab
from llmops.ui.gateway_client import GatewayClient
from llmops.ui.section import Section
from llmops.workspace import Workspace

UI_PATH = "/ui"


def assemble(workspace: Workspace, gateway: FastAPI | None = None) -> tuple[gr.Blocks, list[Section]]:
    """The Blocks and its sections; without a `gateway` app the arena and promote/rollback are disabled."""
    client = GatewayClient(gateway) if gateway is not None else None
    trainer = LLaMAFactoryTrainer(workspace)
    with gr.Blocks(title="llmops", analytics_enabled=False) as blocks:
        gr.Markdown(f"# llmops · closed-loop LLM system\nworkspace `{workspace.root}`")
        with gr.Tabs():
            with gr.Tab("Data", id="data") as data_page:
                data = data_tab.render(workspace)
            with gr.Tab("Train", id="train") as train_page:
                train = train_tab.render(workspace, trainer)
            with gr.Tab("A/B arena", id="arena") as arena_page:
                arena = arena_tab.render(workspace, client)
            with gr.Tab("Models & rollout", id="models") as models_page:
                models = models_tab.render(workspace, client)
            with gr.Tab("Monitor", id="monitor") as monitor_page:
                monitor = monitor_tab.render(workspace)
        sections = [data, train, arena, models, monitor]
        pages = [data_page, train_page, arena_page, models_page, monitor_page]
        for page, section in zip(pages, sections, strict=True):
            blocks.load(section.load, outputs=list(section.outputs))
            page.select(section.load, outputs=list(section.outputs))
    return blocks, sections


def build_ui(workspace: Workspace, gateway: FastAPI | None = None) -> gr.Blocks:
    """The UI of `workspace`; pass the gateway app it is mounted in to enable the arena and admin actions."""
    return assemble(workspace, gateway)[0]


def mount_ui(app: FastAPI, workspace: Workspace, path: str = UI_PATH) -> FastAPI:
    """Mount the UI at `path` (default /ui) of the gateway `app`; returns the app."""
    blocks = build_ui(workspace, gateway=app)
    mounted: FastAPI = gr.mount_gradio_app(app, blocks, path=path, ssr_mode=False, show_api=False)
    return mounted
