"""`llmops models …`: Model registry: versions, lineage, aliases."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.commands.common import WorkspaceOption, console, workspace_from
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.train.export import copy_model, merge_adapter

app = typer.Typer(help="Model registry: versions, lineage, aliases.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Version name (e.g. chat-v1.1) or alias (production, candidate …).")]


@app.command("list")
def list_(workspace: WorkspaceOption = Path(".")) -> None:
    """All versions with their lineage and aliases."""
    ws = workspace_from(workspace)
    by_model: dict[str, list[str]] = {}
    for alias, name in registry.aliases(ws).items():
        by_model.setdefault(name, []).append(alias)
    table = Table("name", "stage", "parent", "type", "datasets", "final loss", "aliases", "status")
    for v in registry.list_versions(ws):
        loss = v.metrics.get("final_loss")
        table.add_row(v.name, v.stage, v.parent or "", "merged" if v.merged else "adapter",
                      ", ".join(d.get("name", "") for d in v.datasets), f"{loss:.4f}" if loss is not None else "",
                      ", ".join(by_model.get(v.name, [])), v.status)
    console.print(table)


@app.command()
def show(name: NameArg, workspace: WorkspaceOption = Path(".")) -> None:
    """One version as JSON (paths, lineage, datasets with sha256, config, run, metrics)."""
    version = registry.resolve(workspace_from(workspace), name)
    console.print_json(json.dumps(version.to_dict(), ensure_ascii=False))


@app.command()
def register(
    kind: Annotated[str, typer.Option(help="completion or chat.")] = "chat",
    path: Annotated[str, typer.Option(help="A full HF model folder, or a LoRA adapter with --base-model.")] = "",
    base_model: Annotated[str, typer.Option(help="The model an adapter applies to.")] = "",
    upstream_url: Annotated[str, typer.Option(help="Served by this OpenAI-compatible server (vLLM, SGLang, "
                                              "`llamafactory-cli api`) instead of in-process.")] = "",
    stage: Annotated[str, typer.Option(help="How it was made: base, pt, sft or dpo.")] = "sft",
    parent: Annotated[str, typer.Option(help="Registered version it came from.")] = "",
    version: Annotated[str, typer.Option(help="e.g. v1.0 (default: the next major version).")] = "",
    workspace: WorkspaceOption = Path("."),
) -> None:
    """Register a model made elsewhere (a local HF folder, an adapter, or an upstream server's model)."""
    if not path and not upstream_url:
        raise LLMOpsError("register: give --path (a model folder or adapter) or --upstream-url")
    adapter = bool(base_model)
    model = registry.register_version(
        workspace_from(workspace), kind=kind, stage=stage, parent=parent or None,
        base_model=base_model or path, path=path, merged=not adapter, upstream_url=upstream_url,
        version=version or None,
    )
    console.print(f"[green]registered[/green] {model.name} ({'adapter' if adapter else 'merged'}"
                  f"{', upstream ' + upstream_url if upstream_url else ''})")


@app.command()
def promote(name: NameArg, workspace: WorkspaceOption = Path(".")) -> None:
    """Point `production` at NAME (the old production becomes `previous`). Only moves aliases."""
    ws = workspace_from(workspace)
    target = registry.resolve(ws, name).name
    old = registry.promote(ws, target)
    console.print(f"production: {old or '(none)'} → {target}")


@app.command()
def rollback(workspace: WorkspaceOption = Path(".")) -> None:
    """Point `production` back at `previous`. Only moves aliases."""
    console.print(f"production → {registry.rollback(workspace_from(workspace))}")


@app.command()
def export(name: NameArg, out: Annotated[Path, typer.Option("--out", help="Folder to create.")],
           workspace: WorkspaceOption = Path(".")) -> None:
    """Write a full HF model folder (an adapter is merged into its base with `llamafactory-cli export`)."""
    ws = workspace_from(workspace)
    version = registry.resolve(ws, name)
    target = out.expanduser().resolve()
    if version.merged:
        copy_model(Path(version.path), target)
    else:
        merge_adapter(ws, version.base_model, version.path, target)
    console.print(f"[green]exported[/green] {version.name} → {target}")
