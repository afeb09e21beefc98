"""Options and helpers shared by the command groups."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from llmops.workspace import Workspace, open_workspace

console = Console()

WorkspaceOption = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Workspace folder (created by `llmops init`).", show_default=True),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Settings override key.sub=value (repeatable)."),
]


def workspace_from(path: Path, overrides: list[str] | None = None) -> Workspace:
    return open_workspace(path, overrides)
