"""`llmops train …`: Training: LLaMA-Factory CPT → SFT → DPO runs."""

import typer

app = typer.Typer(help="Training: LLaMA-Factory CPT → SFT → DPO runs.", no_args_is_help=True)
