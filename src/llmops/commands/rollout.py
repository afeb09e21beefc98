"""`llmops rollout …`: Gradual rollout: status, history, promote, rollback."""

import typer

app = typer.Typer(help="Gradual rollout: status, history, promote, rollback.", no_args_is_help=True)
