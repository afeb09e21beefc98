"""Options and helpers shared by the command groups."""

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

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
UNBOUNDED = 100_000  # columns to measure a table's natural width in
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Show every column (hashes, files) however wide.")]


def workspace_from(path: Path, overrides: list[str] | None = None) -> Workspace:
    return open_workspace(path, overrides)


def print_json(value: Any) -> None:
    """`value` as indented JSON on stdout, unwrapped and unstyled (for scripts and `jq`)."""
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def names_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None,
                name_column: int = 0) -> Table:
    """A table whose names (column `name_column`) are never cut or wrapped, however narrow the terminal: the
    other columns wrap instead."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    widest = max((len(row[name_column]) for row in rows), default=0)
    for index, header in enumerate(headers):
        if index == name_column:
            table.add_column(header, no_wrap=True, overflow="fold", min_width=max(widest, len(header)))
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def print_table(table: Table, wide: bool = False) -> None:
    """Print `table` to fit the terminal, or (`wide`) as wide as its columns need, past the terminal's edge."""
    if not wide:
        console.print(table)
        return
    needed = console.measure(table, options=console.options.update_width(UNBOUNDED)).maximum
    Console(width=max(console.width, needed), file=console.file).print(table)


def loss_text(value: float | None) -> str:
    """A loss for people: 4 significant digits (1.0384005943934123 → 1.038); empty when unknown."""
    return "" if value is None else f"{value:.4g}"


def count_text(value: int | None) -> str:
    """A count with thousands separators (12345 → 12,345); empty when unknown."""
    return "" if value is None else f"{value:,}"


def time_text(timestamp: float) -> str:
    """A Unix timestamp as local time to the minute."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
