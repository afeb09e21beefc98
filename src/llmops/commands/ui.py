"""`llmops ui`: start the gateway (API + web UI) and open the UI in a browser (the URL is printed too)."""

from __future__ import annotations

import threading
import time
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmops.commands.common import SetOption, WorkspaceOption, console, workspace_from
from llmops.settings import updated

if TYPE_CHECKING:
    import uvicorn


def _open_when_started(server: uvicorn.Server, url: str) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.1)
    if server.started and not webbrowser.open(url):
        console.print(f"no browser found: open {url}")


def ui(
    workspace: WorkspaceOption = Path("."),
    host: Annotated[str | None, typer.Option(help="Address to bind (default: serve.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: serve.port, 8000).")] = None,
    browser: Annotated[bool, typer.Option(help="Open the UI in the default browser.")] = True,
    overrides: SetOption = None,
) -> None:
    """Serve the gateway with the web UI at /ui and open it: Data · Train · A/B arena · Models · Monitor."""
    from llmops.serve.gateway import create_app
    from llmops.serve.server import GatewayServer
    from llmops.ui.app import UI_PATH, mount_ui

    ws = workspace_from(workspace, overrides)
    settings = updated(ws.settings.serve, "ui", host=host, port=port)
    bind_host, bind_port = settings.host, settings.port
    url = f"http://{bind_host}:{bind_port}{UI_PATH}/"
    console.print(f"[green]web UI[/green] {url}  (API at http://{bind_host}:{bind_port}/v1, workspace {ws.root})")
    console.print(f"sign in as admin with the token in {ws.token_path}, or a user of `llmops auth list`",
                  highlight=False)
    server = GatewayServer(mount_ui(create_app(ws), ws, bind_host=bind_host), host=bind_host, port=bind_port)
    if browser:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    server.run_gateway()
