"""`llmops models …`: Model registry: versions, lineage, aliases."""

import typer

app = typer.Typer(help="Model registry: versions, lineage, aliases.", no_args_is_help=True)
