"""`llmops arena …`: A/B arena: votes and the leaderboard."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.commands.common import WorkspaceOption, console, workspace_from
from llmops.serve.leaderboard import leaderboard as compute_leaderboard

app = typer.Typer(help="A/B arena: votes and the leaderboard.", no_args_is_help=True)


@app.command()
def leaderboard(
    workspace: WorkspaceOption = Path("."),
    rounds: Annotated[int, typer.Option(min=1, max=5000, help="Bootstrap resamples for the 95% intervals.")] = 200,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Bradley–Terry ratings of the versions from arena votes (ties count half), with 95% intervals."""
    ratings = compute_leaderboard(workspace_from(workspace), rounds, seed)
    if as_json:
        console.print_json(json.dumps([r.to_dict() for r in ratings]))
        return
    if not ratings:
        console.print("no voted battles between two different versions yet")
        return
    table = Table(title="Arena leaderboard (Bradley–Terry, 95% bootstrap interval)")
    for column in ("rank", "model", "rating", "95% interval", "battles", "wins", "losses", "ties"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for rank, r in enumerate(ratings, 1):
        table.add_row(str(rank), r.model, f"{r.rating:.0f}", f"{r.ci_low:.0f} – {r.ci_high:.0f}", str(r.battles),
                      str(r.wins), str(r.losses), str(r.ties))
    console.print(table)
