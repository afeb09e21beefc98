"""`llmops models …`: Model registry: versions, lineage, aliases."""

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from llmops.commands.common import (
    JsonOption,
    SetOption,
    WideOption,
    WorkspaceOption,
    console,
    loss_text,
    names_table,
    print_json,
    print_table,
    workspace_from,
)
from llmops.errors import LLMOpsError
from llmops.models import registry, rollouts
from llmops.models.registry import ModelVersion
from llmops.train import gguf
from llmops.train.export import copy_model, merge_adapter
from llmops.workspace import Workspace

app = typer.Typer(help="Model registry: versions, lineage, aliases.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Version name (e.g. chat-v1.1) or alias (production, candidate …).")]


@app.command("list")
def list_(workspace: WorkspaceOption = Path("."), overrides: SetOption = None, as_json: JsonOption = False,
          wide: WideOption = False) -> None:
    """All versions with their lineage, final loss and aliases (--wide: their datasets too)."""
    ws = workspace_from(workspace, overrides)
    by_model: dict[str, list[str]] = {}
    for alias, name in registry.aliases(ws).items():
        by_model.setdefault(name, []).append(alias)
    versions = registry.list_versions(ws)
    if as_json:
        print_json([{**v.to_dict(), "aliases": by_model.get(v.name, [])} for v in versions])
        return
    headers = ["name", "stage", "parent", "type", "final loss", "aliases", "status"] + (["datasets"] if wide else [])
    rows = [[v.name, v.stage, v.parent or "", "merged" if v.merged else "adapter",
             loss_text(v.metrics.get("final_loss")), ", ".join(by_model.get(v.name, [])), v.status]
            + ([", ".join(d.get("name", "") for d in v.datasets)] if wide else []) for v in versions]
    print_table(names_table(headers, rows), wide)


@app.command()
def show(name: NameArg, workspace: WorkspaceOption = Path("."), overrides: SetOption = None) -> None:
    """One version as JSON (paths, lineage, datasets with sha256, config, run, metrics)."""
    print_json(registry.resolve(workspace_from(workspace, overrides), name).to_dict())


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
    overrides: SetOption = None,
) -> None:
    """Register a model made elsewhere (a local HF folder, an adapter, or an upstream server's model)."""
    if not path and not upstream_url:
        raise LLMOpsError("register: give --path (a model folder or adapter) or --upstream-url")
    adapter = bool(base_model)
    model = registry.register_version(
        workspace_from(workspace, overrides), kind=kind, stage=stage, parent=parent or None,
        base_model=base_model or path, path=path, merged=not adapter, upstream_url=upstream_url,
        version=version or None,
    )
    console.print(f"[green]registered[/green] {model.name} ({'adapter' if adapter else 'merged'}"
                  f"{', upstream ' + upstream_url if upstream_url else ''})")


ReasonOption = Annotated[str, typer.Option(help="Why, recorded with the rollout event.")]


@app.command()
def promote(name: NameArg, workspace: WorkspaceOption = Path("."), reason: ReasonOption = "manual",
            overrides: SetOption = None) -> None:
    """Point `production` at NAME (the old production becomes `previous`); when NAME is the running rollout's
    candidate, that rollout ends as promoted. Recorded as a rollout event."""
    done = rollouts.promote(workspace_from(workspace, overrides), name, by="cli", reason=reason)
    console.print(f"production: {done.displaced or '(none)'} → {done.production}")


@app.command()
def rollback(workspace: WorkspaceOption = Path("."), reason: ReasonOption = "manual",
             overrides: SetOption = None) -> None:
    """Point `production` back at `previous`; with a rollout running, end it instead (candidate traffic 0).
    Recorded as a rollout event."""
    done = rollouts.rollback(workspace_from(workspace, overrides), by="cli", reason=reason)
    if done.rollout is not None:
        console.print(f"[yellow]rolled back[/yellow] {done.rollout.candidate}; production stays {done.production}")
        return
    console.print(f"production → {done.production}")


GGUFOption = Annotated[bool, typer.Option("--gguf", help="A GGUF file for llama.cpp's llama-server instead: a merged "
                                          "version as a GGUF f32 model, an adapter as a GGUF LoRA adapter "
                                          "(default models/NAME.gguf).")]
LLAMA_SERVER_PORT = 8081  # the port the printed llama-server and register lines use


@app.command()
def export(name: NameArg,
           out: Annotated[Path | None, typer.Option("--out", help="Folder to create (with --gguf: the file).")] = None,
           as_gguf: GGUFOption = False, workspace: WorkspaceOption = Path("."), overrides: SetOption = None) -> None:
    """Write a full HF model folder (an adapter is merged into its base with `llamafactory-cli export`), or with
    --gguf a GGUF file for llama.cpp's `llama-server` (docs/operations.md: CPU serving with llama.cpp)."""
    ws = workspace_from(workspace, overrides)
    version = registry.resolve(ws, name)
    target = out.expanduser().resolve() if out is not None else None
    if as_gguf:
        _export_gguf(ws, version, target)
        return
    if target is None:
        raise LLMOpsError("models export: give --out FOLDER (a HF model folder to create) or --gguf")
    if version.merged:
        copy_model(Path(version.path), target)
    else:
        merge_adapter(ws, version.base_model, version.path, target)
    console.print(f"[green]exported[/green] {version.name} → {target}")


def _export_gguf(ws: Workspace, version: ModelVersion, target: Path | None) -> None:
    job = gguf.version_job(ws, version, target)
    console.print(f"$ {job.display}", markup=False, highlight=False, soft_wrap=True)
    with console.status(f"converting {version.name} to GGUF …") as status:
        result = gguf.run_job(job, lambda line: status.update(escape(f"{version.name}: {line[:120]}")))
    kind = "GGUF f32 model" if version.merged else "GGUF LoRA adapter"
    console.print(f"[green]exported[/green] {version.name} → {result.path} ({kind}; log {job.log})")
    if result.relabelled:
        console.print("[yellow]note[/yellow]: llama.cpp does not know this tokenizer's pre-tokenizer (Han characters "
                      "isolated); it was labelled gpt-2, so some Chinese prompts get a token more than in transformers")
    console.print("Serve it with llama.cpp and register it as a version's upstream:")
    for line in serve_lines(ws, version, result.path):
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def serve_lines(ws: Workspace, version: ModelVersion, exported: Path) -> list[str]:
    """The `llama-server` line that serves `exported` (an adapter on its parent's GGUF) and the `llmops models
    register` line that makes it a version served by that upstream."""
    where = [] if ws.root.resolve() == Path.cwd().resolve() else ["--workspace", str(ws.root)]
    model, adapter, lines = exported, None, []
    if not version.merged:
        model, adapter = Path(f"<a GGUF of {version.base_model}>"), exported
        if version.parent:
            model = gguf.gguf_path(ws, version.parent)
            if not model.is_file():
                lines.append(shlex.join(["llmops", "models", "export", version.parent, "--gguf", *where]))
    binary = str(gguf.llama_server_binary() or "llama-server")
    command = gguf.llama_server_command(binary, model, adapter=adapter, port=LLAMA_SERVER_PORT)
    lines.append(f'{shlex.join(command)} --api-key "${ws.settings.serve.upstream_api_key_env}"')
    register = ["llmops", "models", "register", "--kind", version.kind, "--stage", version.stage,
                "--parent", version.name, *([] if version.merged else ["--base-model", version.base_model]),
                "--path", version.path, "--upstream-url", f"http://127.0.0.1:{LLAMA_SERVER_PORT}/v1", *where]
    return [*lines, shlex.join(register)]
