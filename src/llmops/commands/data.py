"""`llmops data …`: Data: domain corpus (CPT), Self-Instruct (SFT), preferences (DPO), dataset registry."""

import math
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmops.commands.common import (
    JsonOption,
    SetOption,
    WideOption,
    WorkspaceOption,
    console,
    count_text,
    names_table,
    print_json,
    print_table,
    time_text,
    workspace_from,
)
from llmops.data.formats import convert_file, validate_file
from llmops.data.kto import export_kto
from llmops.data.preferences import export_preferences, pair_stats
from llmops.data.registry import get_dataset, list_datasets, names_a_file, read_dataset_info, validate_registered
from llmops.data.templates import GENERIC_TEMPLATES
from llmops.demo.preset import SEED_TASKS_FILE, copy_preset_documents, load_products, preset_dir
from llmops.demo.templates import shop_templates
from llmops.errors import LLMOpsError

app = typer.Typer(
    help="Data: domain corpus (CPT), Self-Instruct (SFT), preferences (DPO), dataset registry.",
    no_args_is_help=True,
)
prefs_app = typer.Typer(help="Preference store: votes → DPO pairs.", no_args_is_help=True)
app.add_typer(prefs_app, name="prefs")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _since(value: str | None) -> float | None:
    """A Unix timestamp or an ISO date/time."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise LLMOpsError(f"--since {value!r}: expected a finite Unix timestamp or an ISO date")
        return seconds
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise LLMOpsError(f"--since {value!r}: expected a Unix timestamp or an ISO date") from exc


@app.command()
def corpus(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt .md .jsonl .html .pdf).")],
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer folder or hub id (default: data.tokenizer).")] = None,
    chunk_size: Annotated[int | None, typer.Option(help="Tokens per chunk (default: data.chunk_size).")] = None,
    overlap: Annotated[int | None, typer.Option(help="Tokens shared by consecutive chunks.")] = None,
    threshold: Annotated[float | None, typer.Option(help="MinHash near-duplicate threshold.")] = None,
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """Documents → cleaned, de-duplicated, token-bounded CPT chunks in data/llmops/cpt/ (registered)."""
    from llmops.data.corpus import build_corpus

    ws = workspace_from(workspace, overrides)
    with _progress() as progress:
        report = build_corpus(ws, paths, tokenizer=tokenizer, chunk_size=chunk_size, chunk_overlap=overlap,
                              near_dup_threshold=threshold, progress=progress)
    stats = report.stats
    console.print(f"[green]wrote[/green] {report.path} as dataset [bold]{report.dataset.name}[/bold]")
    console.print(f"documents read {stats.documents}, skipped {len(report.skipped)}, exact duplicates "
                  f"{stats.exact_duplicates}, near-duplicates {stats.near_duplicates}, repeated chunks "
                  f"{stats.duplicate_chunks}, chunks {stats.chunks}, "
                  f"tokens {stats.tokens} (largest chunk {stats.max_chunk_tokens})")
    for reason in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {reason}", highlight=False)


@app.command()
def preset(workspace: WorkspaceOption = Path("."), overrides: SetOption = None) -> None:
    """Copy the bundled preset documents of the demo shop into <workspace>/documents/preset/."""
    ws = workspace_from(workspace, overrides)
    copies = copy_preset_documents(ws.documents_dir / "preset")
    console.print(f"[green]copied[/green] {len(copies)} documents to {ws.documents_dir / 'preset'}")


@app.command("self-instruct")
def self_instruct(
    documents: Annotated[list[Path] | None, typer.Argument(help="Documents (default: <workspace>/documents)."
                                                            )] = None,
    num: Annotated[int | None, typer.Option("--num", "-n", min=1,
                                            help="How many (default: data.num_instructions).")] = None,
    llm: Annotated[bool, typer.Option("--llm/--template", help="LLM bootstrap (recommended) or template mode "
                                      "(offline).")] = False,
    base_url: Annotated[str, typer.Option(help="LLM mode: OpenAI-compatible base URL (default: "
                                          "data.llm_base_url).")] = "",
    model: Annotated[str, typer.Option(help="LLM mode: model name (default: data.llm_model).")] = "",
    api_key: Annotated[str, typer.Option(help="LLM mode: API key (default: the environment variable named by "
                                         "data.llm_api_key_env, else EMPTY).")] = "",
    timeout: Annotated[float, typer.Option(help="LLM mode: seconds per request.")] = 60.0,
    retries: Annotated[int, typer.Option(min=0, help="LLM mode: retries per request.")] = 3,
    seed_tasks: Annotated[Path | None, typer.Option(help="LLM mode: seed tasks jsonl (default: built-in "
                                                    "generic ones; with --preset the demo shop's).")] = None,
    preset: Annotated[bool, typer.Option("--preset", help="Use the demo shop's templates and products "
                                         "(with --llm its seed tasks), for the documents of `llmops data "
                                         "preset`.")] = False,
    closing_rate: Annotated[float | None, typer.Option(help="Share of answers ending with a polite closing "
                                                       "(default: data.closing_rate).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """Self-Instruct SFT data (messages format) in data/llmops/sft/ (registered), with counts per task type.

    The LLM mode (--llm, the Self-Instruct bootstrap on any OpenAI-compatible model) is the recommended one: its
    tasks are richer and more varied. Template mode works offline: it builds the six task types from the
    documents' own headings, definitions, lists, numbers and sentences.
    """
    if seed_tasks is not None and not llm:
        raise LLMOpsError(f"--seed-tasks {seed_tasks}: seed tasks drive the LLM bootstrap (add --llm --base-url URL "
                          "--model NAME); template mode builds its tasks from the documents")
    ws = workspace_from(workspace, overrides)
    from llmops.data.self_instruct import generate_sft_dataset
    from llmops.data.self_instruct_llm import settings_endpoint

    endpoint = settings_endpoint(ws.settings.data, base_url, model, api_key, timeout, retries) if llm else None
    templates = shop_templates(load_products()) if preset else GENERIC_TEMPLATES
    if preset and llm and seed_tasks is None:
        seed_tasks = preset_dir() / SEED_TASKS_FILE
    with _progress() as progress:
        report = generate_sft_dataset(ws, num, use_mock=not llm, documents=documents, seed_tasks=seed_tasks,
                                      templates=templates, endpoint=endpoint, closing_rate=closing_rate, seed=seed,
                                      progress=progress)
    stats = report.stats
    console.print(f"[green]wrote[/green] {report.path} ({report.dataset.rows} samples) as dataset "
                  f"[bold]{report.dataset.name}[/bold]")
    types = ", ".join(f"{name} {count}" for name, count in sorted(stats.by_type.items()))
    console.print(f"candidates {stats.candidates}, rejected as similar (ROUGE-L) {stats.rejected_similar}, "
                  f"with closing phrase {stats.closings}; by type: {types}")
    if stats.llm:
        console.print(f"LLM: {asdict(stats.llm)}", highlight=False)
    for reason in stats.skipped:
        console.print(f"[yellow]skipped[/yellow] {reason}", highlight=False, soft_wrap=True)


@app.command("eval-set")
def eval_set(
    from_prompts: Annotated[Path | None, typer.Option("--from-prompts", help="A file of prompts: one a line, or "
                                                      "jsonl of {prompt, reference}.")] = None,
    from_arena: Annotated[bool, typer.Option("--from-arena", help="The prompts of voted arena battles.")] = False,
    share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Default source: this share of the newest SFT "
                                         "dataset's prompts, removed from it (a new version is registered).")] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed of the held-out share.")] = 0,
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """The held-out evaluation set of `loop tick` in data/llmops/eval/ (registered, kind eval); no training
    set contains its prompts."""
    from llmops.data import eval_sets

    if from_prompts is not None and from_arena:
        raise LLMOpsError("--from-prompts and --from-arena: give one source")
    ws = workspace_from(workspace, overrides)
    if from_prompts is not None:
        report = eval_sets.eval_set_from_prompts(ws, from_prompts)
    elif from_arena:
        report = eval_sets.eval_set_from_arena(ws)
    else:
        report = eval_sets.eval_set_from_sft(ws, share, seed)
    console.print(f"[green]wrote[/green] {report.path} ({report.dataset.rows} prompts, {report.references} with a "
                  f"reference) as eval set [bold]{report.dataset.name}[/bold], sha256 {report.dataset.sha256[:12]}")
    if report.sft is not None:
        console.print(f"removed them from SFT dataset [bold]{report.sft.name}[/bold]: version {report.sft.version}, "
                      f"{report.sft.rows} rows in {report.sft.file_name}")


@prefs_app.command("stats")
def prefs_stats(
    since: Annotated[str | None, typer.Option(help="Only votes after this (Unix time or ISO date).")] = None,
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """Votes and the DPO pairs they give (ties, both_bad, identical, empty, duplicates, capped)."""
    stats = pair_stats(workspace_from(workspace, overrides), _since(since))
    table = Table("count", "value")
    for name, value in asdict(stats).items():
        table.add_row(name, count_text(value) if isinstance(value, int) else str(value))
    console.print(table)


@prefs_app.command("export")
def prefs_export(
    since: Annotated[str | None, typer.Option(help="Only votes after this (Unix time or ISO date).")] = None,
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """Write dpo/prefs_<ts>.jsonl + dpo/prefs.jsonl (spec 4.3.2) and a TRL file, and register them."""
    report = export_preferences(workspace_from(workspace, overrides), _since(since))
    console.print(f"[green]exported[/green] {report.stats.valid_pairs} pairs to {report.path} and "
                  f"{report.latest_path}; TRL format: {report.trl_path}")
    console.print(f"votes {report.stats.votes}; {report.stats.left_out()}", highlight=False)


@prefs_app.command("export-kto")
def prefs_export_kto(
    since: Annotated[str | None, typer.Option(help="Only votes and thumbs after this (Unix time or ISO date).")] = None,
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """Every vote and thumb as KTO examples: write kto/kto_<ts>.jsonl + kto/kto.jsonl and register them."""
    report = export_kto(workspace_from(workspace, overrides), _since(since))
    table = Table("count", "value")
    for name, value in [*asdict(report.stats).items(), ("examples", report.stats.examples)]:
        table.add_row(name, count_text(value))
    console.print(table)
    console.print(f"[green]exported[/green] {report.stats.examples} KTO examples to {report.path} and "
                  f"{report.latest_path}")


@app.command("list")
def list_(workspace: WorkspaceOption = Path("."), overrides: SetOption = None, as_json: JsonOption = False,
          wide: WideOption = False) -> None:
    """Registered datasets with version, rows and creation time (--wide: sha256 and file too)."""
    records = list_datasets(workspace_from(workspace, overrides))
    if as_json:
        print_json([asdict(record) for record in records])
        return
    headers = ["name", "kind", "format", "version", "rows", "created"] + (["sha256", "file"] if wide else [])
    rows = [[r.name, r.kind, r.format, str(r.version), count_text(r.rows), time_text(r.created_at)]
            + ([r.sha256[:12], r.file_name] if wide else []) for r in records]
    print_table(names_table(headers, rows), wide)


@app.command()
def show(name: str, workspace: WorkspaceOption = Path("."), overrides: SetOption = None) -> None:
    """One dataset: its registry record and its dataset_info.json entry."""
    ws = workspace_from(workspace, overrides)
    record = get_dataset(ws, name)
    for key, value in asdict(record).items():
        console.print(f"{key}: {time_text(value) if key == 'created_at' else value}", highlight=False)
    console.print(f"dataset_info.json: {read_dataset_info(ws).get(name, '(not registered for LLaMA-Factory)')}",
                  highlight=False)


@app.command()
def validate(
    target: Annotated[str, typer.Argument(help="A registered dataset name or a .json/.jsonl file.")],
    workspace: WorkspaceOption = Path("."),
    overrides: SetOption = None,
) -> None:
    """Check a dataset against its format; errors as file:line: field: problem (exit 1 if any)."""
    if names_a_file(target):
        report = validate_file(Path(target))
    else:
        report = validate_registered(workspace_from(workspace, overrides), target)
    for error in report.errors:
        console.print(f"[red]{error}[/red]", highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)
    console.print(f"[green]ok[/green] {report.path}: {report.rows} records, format {report.format}")


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="A .json/.jsonl dataset file.")],
    target: Annotated[Path, typer.Argument(help="The file to write (.json array or .jsonl).")],
    to: Annotated[str, typer.Option(help="Target format: messages, sharegpt, alpaca, ranking or trl.")],
    source_format: Annotated[str | None, typer.Option("--from", help="Source format (default: detected).")] = None,
) -> None:
    """Convert a dataset file between formats (messages ↔ sharegpt ↔ alpaca, ranking ↔ trl), atomically."""
    count = convert_file(source, target, to, source_format)
    console.print(f"[green]wrote[/green] {target}: {count} records in format {to}")
