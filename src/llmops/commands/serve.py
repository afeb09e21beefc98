"""`llmops serve …`: Serving: the OpenAI-compatible gateway with the A/B arena."""

import typer

app = typer.Typer(help="Serving: the OpenAI-compatible gateway with the A/B arena.", no_args_is_help=True)
