"""`llmops demo …`: Demo mode: the tiny base model and the whole loop on a CPU."""

import typer

app = typer.Typer(help="Demo mode: the tiny base model and the whole loop on a CPU.", no_args_is_help=True)
