"""`llmops data …`: Data: domain corpus (CPT), Self-Instruct (SFT), preferences (DPO), dataset registry."""

import typer

app = typer.Typer(
    help="Data: domain corpus (CPT), Self-Instruct (SFT), preferences (DPO), dataset registry.",
    no_args_is_help=True,
)
