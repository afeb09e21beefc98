"""The web UI: one Gradio Blocks page with the tabs of spec section 8, mounted in the gateway's FastAPI app.

Every tab is built by a small function that returns a `Section`; on each page load, and whenever a tab is
opened, the sections' `load` functions re-read the workspace and the database (spec 5.2 `resume`), so a
reload shows a running training's live status again. Actions call the library (or, for serving state,
the gateway's routes).

Sign-in: Gradio's own login (user `admin` with the admin token, or a user of `auth.users`) guards the page,
and `SignInGuard` every other route under /ui; failed sign-ins go through the gateway's `SignInLimiter`. With
`auth.open_arena` the arena tab alone is also served, without sign-in, at /arena. `OriginGuard` keeps foreign
origins and `HostGuard` foreign Host names off /ui, /arena and the admin routes. Both Blocks are marked launched,
so Gradio takes file inputs only from its upload folder (see `_mount`).
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import gradio as gr
from fastapi import FastAPI, HTTPException
from gradio.routes import App as GradioApp
from starlette.routing import Mount

from llmops.auth import SignInLimiter, TooManyFailures, sign_in
from llmops.errors import LLMOpsError
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.ui import arena_tab, data_tab, loop_tab, models_tab, monitor_tab, train_tab
from llmops.ui.gateway_client import GatewayClient
from llmops.ui.guard import HostGuard, OriginGuard, SignInGuard, allowed_hosts, login_page, no_uploads
from llmops.ui.section import Section
from llmops.workspace import Workspace

UI_PATH = "/ui"
ARENA_PATH = "/arena"
ADMIN_PATH = "/v1/admin"
SIGN_IN_MESSAGE = ("Sign in as <code>admin</code> with the workspace's admin token (.llmops/admin_token), "
                   "or as a user added with <code>llmops auth add-user</code>.")


def assemble(workspace: Workspace, gateway: FastAPI | None = None) -> tuple[gr.Blocks, list[Section]]:
    """The Blocks and its sections; without a `gateway` app the arena and promote/rollback are disabled."""
    client = GatewayClient(gateway, arena_token=workspace.admin_token) if gateway is not None else None
    trainer = LLaMAFactoryTrainer(workspace)
    with gr.Blocks(title="llmops", analytics_enabled=False) as blocks:
        with gr.Row():
            gr.Markdown(f"# llmops · closed-loop LLM system\nworkspace `{workspace.root}`")
            signed_in = gr.Markdown(elem_id="signed-in")
        blocks.load(signed_in_as, outputs=signed_in)
        with gr.Tabs():
            with gr.Tab("Data", id="data") as data_page:
                data = data_tab.render(workspace)
            with gr.Tab("Train", id="train") as train_page:
                train = train_tab.render(workspace, trainer)
            with gr.Tab("A/B arena", id="arena") as arena_page:
                arena = arena_tab.render(workspace, client)
            with gr.Tab("Models", id="models") as models_page:
                models = models_tab.render(workspace)
            with gr.Tab("Loop & rollout", id="loop") as loop_page:
                loop = loop_tab.render(workspace, client, trainer)
            with gr.Tab("Monitor", id="monitor") as monitor_page:
                monitor = monitor_tab.render(workspace)
        sections = [data, train, arena, models, loop, monitor]
        pages = [data_page, train_page, arena_page, models_page, loop_page, monitor_page]
        for page, section in zip(pages, sections, strict=True):
            blocks.load(_loader(section), outputs=list(section.outputs))
            page.select(_loader(section), outputs=list(section.outputs))
    return blocks, sections


def _loader(section: Section) -> Callable[[], Any]:
    """The section's load as Gradio calls it: the value of a single output is returned alone (Gradio takes a
    one-output function's return value as that output's value, so a list of one table would show as one cell)."""
    if len(section.outputs) == 1:
        return lambda: section.load()[0]
    return section.load


def build_ui(workspace: Workspace, gateway: FastAPI | None = None) -> gr.Blocks:
    """The UI of `workspace`; pass the gateway app it is mounted in to enable the arena and admin actions."""
    return assemble(workspace, gateway)[0]


def signed_in_as(request: gr.Request) -> str:
    """The header's line: who is signed in, and the link to Gradio's logout route (it ends every session)."""
    if not request.username:
        return ""
    return f"signed in as `{request.username}` · [sign out]({UI_PATH}/logout)"


def build_arena(workspace: Workspace, gateway: FastAPI) -> gr.Blocks:
    """The voters' page: the arena tab alone; its battles and votes carry no credentials."""
    page = gr.Blocks(title="llmops arena", analytics_enabled=False)
    with page:
        gr.Markdown("# llmops · A/B arena")
        section = arena_tab.render(workspace, GatewayClient(gateway))
        page.load(_loader(section), outputs=list(section.outputs))
    return page


def _sign_in(workspace: Workspace, limiter: SignInLimiter) -> Callable[[str, str], Awaitable[bool]]:
    """Gradio's login check; a locked-out user gets 429 (Gradio's login route lets the HTTPException through)."""

    async def check(user: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(sign_in, workspace, limiter, user, password)
        except TooManyFailures as exc:
            raise HTTPException(429, str(exc), {"Retry-After": str(exc.retry_after_s)}) from exc

    return check


def _gradio_at(app: FastAPI, path: str) -> GradioApp:
    for route in app.routes:
        if isinstance(route, Mount) and route.path == path and isinstance(route.app, GradioApp):
            return route.app
    raise LLMOpsError(f"{path}: no Gradio app is mounted there")


def _mount(app: FastAPI, blocks: gr.Blocks, path: str,
           auth: Callable[[str, str], Awaitable[bool]] | None = None) -> GradioApp:
    """Mount `blocks` at `path`, marked launched as `Blocks.launch()` marks it: Gradio's check that an event's
    file inputs were uploaded (processing_utils `_check_allowed`, run before it copies a file into its cache)
    is skipped for an app that has not launched, and `has_launched` is read nowhere else. allowed_paths and
    blocked_paths keep launch()'s defaults (empty), which mount_gradio_app sets."""
    gr.mount_gradio_app(app, blocks, path=path, ssr_mode=False, show_api=False, auth=auth,
                        auth_message=SIGN_IN_MESSAGE if auth else None)
    blocks.has_launched = True
    return _gradio_at(app, path)


def mount_ui(app: FastAPI, workspace: Workspace, path: str = UI_PATH, bind_host: str | None = None) -> FastAPI:
    """Mount the UI at `path` (default /ui) of the gateway `app` (from `create_app`) behind sign-in, the voters'
    arena at /arena when `auth.open_arena`, and the origin and Host checks (`bind_host`: the address the server
    binds, when not serve.host); returns the app."""
    settings = workspace.settings.auth
    ui = _mount(app, build_ui(workspace, gateway=app), path, auth=_sign_in(workspace, app.state.serve.sign_ins))
    app.add_middleware(SignInGuard, prefix=path, gradio=ui, public=login_page, sign_in_at=path)
    guarded = [path, ADMIN_PATH]
    if settings.open_arena:
        arena = _mount(app, build_arena(workspace, app), ARENA_PATH)
        app.add_middleware(SignInGuard, prefix=ARENA_PATH, gradio=arena, public=no_uploads, sign_in_at=path)
        guarded.append(ARENA_PATH)
    app.add_middleware(OriginGuard, prefixes=guarded, allowed=settings.allowed_origins)
    app.add_middleware(HostGuard, prefixes=guarded, allowed=allowed_hosts(workspace.settings, bind_host))
    return app
