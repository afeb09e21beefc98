"""`llmops loop …`: The online loop: trigger → DPO → evaluate → rollout."""

import typer

app = typer.Typer(help="The online loop: trigger → DPO → evaluate → rollout.", no_args_is_help=True)
