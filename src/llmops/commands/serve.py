"""`llmops serve`: the OpenAI-compatible gateway with the A/B arena, feedback, metrics and admin routes, and the
web UI at /ui."""

from pathlib import Path
from typing import Annotated

import typer

from llmops.commands.common import SetOption, WorkspaceOption, console, workspace_from
from llmops.settings import updated


def serve(
    workspace: WorkspaceOption = Path("."),
    host: Annotated[str | None, typer.Option(help="Address to bind (default: serve.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: serve.port, 8000).")] = None,
    overrides: SetOption = None,
) -> None:
    """Run the gateway: OpenAI API at /v1, arena at /v1/arena, metrics at /metrics, admin at /v1/admin, worker
    health at /health, web UI at /ui. Exits with code 1 if a background worker dies."""
    from llmops.serve.gateway import create_app
    from llmops.serve.server import GatewayServer
    from llmops.ui.app import mount_ui

    ws = workspace_from(workspace, overrides)
    settings = updated(ws.settings.serve, "serve", host=host, port=port)
    bind_host, bind_port = settings.host, settings.port
    console.print(f"[green]gateway[/green] http://{bind_host}:{bind_port}/v1  (workspace {ws.root})")
    GatewayServer(mount_ui(create_app(ws), ws, bind_host=bind_host), host=bind_host, port=bind_port).run_gateway()
