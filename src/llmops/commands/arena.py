"""`llmops arena …`: A/B arena: votes and the leaderboard."""

import typer

app = typer.Typer(help="A/B arena: votes and the leaderboard.", no_args_is_help=True)
