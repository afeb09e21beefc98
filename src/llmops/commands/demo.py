"""`llmops demo …`: Demo mode: the tiny base model and the whole loop on a CPU."""

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.commands.common import SetOption, console
from llmops.demo.cache import default_cache_dir
from llmops.demo.preset import preset_texts

app = typer.Typer(help="Demo mode: the tiny base model and the whole loop on a CPU.")

DEFAULT_CACHE = default_cache_dir()


@app.callback(invoke_without_command=True)
def run(
    ctx: typer.Context,
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder the demo creates.")] = (
        Path("demo-workspace")),
    cache_dir: Annotated[Path, typer.Option(help="Where the tiny base model is built once and reused.")] = (
        DEFAULT_CACHE),
    replace: Annotated[bool, typer.Option(help="Replace an existing demo workspace.")] = False,
    prompts: Annotated[int, typer.Option(min=50, help="Arena prompts the simulated users vote on.")] = 500,
    heldout: Annotated[int, typer.Option(min=10, help="Held-out evaluation prompts.")] = 150,
    seed: Annotated[int, typer.Option(help="Seed of prompts, users and traffic.")] = 0,
    overrides: SetOption = None,
) -> None:
    """Run the whole loop: base → CPT → Self-Instruct → SFT → arena votes → DPO → evaluation → canary → promote,
    then a broken candidate rolled back. Writes reports/demo/report.md with charts."""
    if ctx.invoked_subcommand is not None:
        return
    from llmops.demo.run import DemoConfig, run_demo

    config = DemoConfig(workspace=workspace, cache_dir=cache_dir, arena_prompts=prompts, heldout_prompts=heldout,
                        seed=seed, overrides=tuple(overrides or ()))
    run_demo(config, replace=replace)


@app.command("build-base")
def build_base(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the HF model: new, empty, or an earlier build (replaced).")
    ],
    seed: Annotated[int, typer.Option(help="Seed of the block split, initialisation and batch order.")] = 0,
    steps: Annotated[int | None, typer.Option(min=1, help="Pre-training steps (default: the demo spec's).")] = None,
) -> None:
    """Train the BPE tokenizer and fully pre-train the tiny Qwen2 base model on the preset documents."""
    from llmops.demo.base_model import BaseModelSpec, build_base_model

    spec = BaseModelSpec()
    report = build_base_model(out, preset_texts(), replace(spec, seed=seed, steps=steps or spec.steps))
    table = Table(title=f"base model → {report.out_dir}", show_header=False)
    table.add_row("parameters", f"{report.parameters:,}")
    table.add_row("vocabulary", str(report.vocab_size))
    table.add_row("blocks (train / held-out)", f"{report.train_blocks} / {report.heldout_blocks}")
    table.add_row("held-out loss before → after", f"{report.loss_before:.3f} → {report.loss_after:.3f}")
    table.add_row("seconds", f"{report.seconds:.1f}")
    console.print(table)
