"""`llmops arena …`: A/B arena: votes and the leaderboard."""

from pathlib import Path
from typing import Annotated

import typer

from llmops.commands.common import (
    JsonOption,
    SetOption,
    WorkspaceOption,
    console,
    count_text,
    names_table,
    print_json,
    workspace_from,
)

app = typer.Typer(help="A/B arena: votes and the leaderboard.", no_args_is_help=True)


@app.command()
def leaderboard(
    workspace: WorkspaceOption = Path("."),
    rounds: Annotated[int, typer.Option(min=1, max=5000, help="Bootstrap resamples for the 95% intervals.")] = 200,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    as_json: JsonOption = False,
    overrides: SetOption = None,
) -> None:
    """Bradley–Terry ratings of the versions from arena votes (ties count half), with 95% intervals."""
    from llmops.serve.leaderboard import leaderboard as compute_leaderboard

    ratings = compute_leaderboard(workspace_from(workspace, overrides), rounds, seed)
    if as_json:
        print_json([r.to_dict() for r in ratings])
        return
    if not ratings:
        console.print("no voted battles between two different versions yet")
        return
    rows = [[str(rank), r.model, f"{r.rating:.0f}", f"{r.ci_low:.0f} – {r.ci_high:.0f}", count_text(r.battles),
             count_text(r.wins), count_text(r.losses), count_text(r.ties)] for rank, r in enumerate(ratings, 1)]
    console.print(names_table(["rank", "model", "rating", "95% interval", "battles", "wins", "losses", "ties"], rows,
                              title="Arena leaderboard (Bradley–Terry, 95% bootstrap interval)", name_column=1))
