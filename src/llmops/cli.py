"""`llmops …`: the command line. Each command is a thin call into the library."""

from pathlib import Path
from typing import Annotated

import typer

from llmops.commands import arena, auth, data, demo, loop, models, rollout, serve, train, ui
from llmops.commands.common import SetOption, console
from llmops.demo.cache import resolve_base
from llmops.errors import LLMOpsError
from llmops.workspace import init_workspace

app = typer.Typer(
    name="llmops",
    help="Closed-loop LLMOps: data → LLaMA-Factory CPT/SFT/DPO → gateway and A/B arena → DPO → gated rollout.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(train.app, name="train")
app.add_typer(models.app, name="models")
app.command(name="serve")(serve.serve)
app.command(name="ui")(ui.ui)
app.add_typer(arena.app, name="arena")
app.add_typer(loop.app, name="loop")
app.add_typer(rollout.app, name="rollout")
app.add_typer(demo.app, name="demo")
app.add_typer(auth.app, name="auth")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Workspace folder to create.")] = Path("."),
    base: Annotated[str | None, typer.Option(help="Base model written as train.base_model: `demo` (the tiny base, "
                                             "built once into $LLMOPS_CACHE, else $XDG_CACHE_HOME/llmops or "
                                             "~/.cache/llmops; no network), a model folder, or a hub id (checked "
                                             "within 5 s).")] = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="The folder, instead of DIRECTORY."
                                                   )] = None,
    overrides: SetOption = None,
) -> None:
    """Create a workspace (idempotent): folders of the spec, dataset_info.json, database, settings, token.
    --base and --set are written into its llmops.yaml."""
    if workspace is not None and directory != Path(".") and workspace != directory:
        raise LLMOpsError(f"init: give the folder once (DIRECTORY {directory} or --workspace {workspace})")
    base_model = resolve_base(base) if base is not None else None
    created = init_workspace(workspace or directory, base_model, overrides)
    console.print(f"[green]workspace ready[/green] {created.root}")
    if base_model is not None:
        console.print(f"train.base_model: {base_model}", highlight=False)


def main() -> None:
    """Entry point: runs the app and turns LLMOpsError into a one-line message and exit code 1."""
    try:
        app()
    except LLMOpsError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
