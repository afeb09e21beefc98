"""Data tab (spec 4, 8.2 step 1): domain corpus, instruction data, preference pairs, registered datasets."""

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from llmops.data.corpus import CorpusReport, build_corpus
from llmops.data.preferences import export_preferences, pair_stats
from llmops.data.registry import list_datasets, validate_dataset
from llmops.demo.preset import copy_preset_documents
from llmops.errors import LLMOpsError
from llmops.ui import instructions_panel
from llmops.ui.section import Section, failed, frame, when
from llmops.workspace import Workspace

DATASET_COLUMNS = ("name", "kind", "format", "rows", "version", "file_name", "sha256", "created")
PAIR_COLUMNS = ("votes", "valid_pairs", "ties", "both_bad", "identical", "empty", "duplicates", "capped")


def preset_folder(workspace: Workspace) -> Path:
    return workspace.root / "documents" / "preset"


def corpus_report(report: CorpusReport) -> str:
    stats = report.stats
    lines = [
        f"✅ saved `{report.path}` as dataset **{report.dataset.name}** (version {report.dataset.version})",
        f"- documents read: {stats.documents} (empty: {stats.empty})",
        f"- duplicates removed: {stats.exact_duplicates} exact, {stats.near_duplicates} near, "
        f"{stats.duplicate_chunks} repeated chunks",
        f"- chunks: {stats.chunks}, tokens: {stats.tokens}, longest chunk: {stats.max_chunk_tokens} tokens",
    ]
    lines += [f"- skipped: {reason}" for reason in report.skipped]
    return "\n".join(lines)


def datasets_table(workspace: Workspace) -> pd.DataFrame:
    rows = [dict(vars(d), sha256=d.sha256[:12], created=when(d.created_at)) for d in list_datasets(workspace)]
    return frame(rows, DATASET_COLUMNS)


def pairs_table(workspace: Workspace) -> pd.DataFrame:
    return frame([vars(pair_stats(workspace))], PAIR_COLUMNS)


def load_preset(workspace: Workspace) -> tuple[str, str]:
    """Copy the bundled documents into the workspace; returns (their paths one a line, a status)."""
    copies = copy_preset_documents(preset_folder(workspace))
    return "\n".join(str(p) for p in copies), f"loaded {len(copies)} preset documents"


def save_corpus(workspace: Workspace, text: str, tokenizer: str, size: float, overlap: float, near: float) -> str:
    """Process the listed documents into a registered CPT dataset (as `llmops data corpus`); returns the report."""
    files = [Path(line.strip()) for line in text.splitlines() if line.strip()]
    try:
        if not files:
            raise LLMOpsError("documents: give at least one file or folder")
        return corpus_report(build_corpus(workspace, files, tokenizer=tokenizer.strip() or None,
                                          chunk_size=int(size), chunk_overlap=int(overlap),
                                          near_dup_threshold=near))
    except LLMOpsError as exc:
        return failed(exc)


def _corpus_panel(workspace: Workspace) -> tuple[gr.Textbox, gr.Markdown]:
    settings = workspace.settings
    with gr.Row():
        paths = gr.Textbox(label="Documents (files or folders, one a line)", lines=4, scale=3)
        with gr.Column(scale=2):
            tokenizer = gr.Textbox(label="Tokenizer (HF folder or hub id)",
                                   value=settings.data.tokenizer or settings.train.base_model)
            chunk_size = gr.Number(label="chunk_size (tokens)", value=settings.data.chunk_size, precision=0,
                                   minimum=16)
            overlap = gr.Number(label="chunk_overlap (tokens)", value=settings.data.chunk_overlap, precision=0,
                                minimum=0)
            threshold = gr.Slider(label="near_dup_threshold", minimum=0.05, maximum=1.0, step=0.05,
                                  value=settings.data.near_dup_threshold)
    with gr.Row():
        load_btn = gr.Button("Load preset documents")
        save_btn = gr.Button("Process and save corpus", variant="primary")
    report = gr.Markdown()

    load_btn.click(lambda: load_preset(workspace), outputs=[paths, report])
    save_btn.click(lambda *values: save_corpus(workspace, *values), inputs=[paths, tokenizer, chunk_size, overlap,
                                                                           threshold], outputs=report)
    return paths, report


def export_pairs(workspace: Workspace) -> tuple[pd.DataFrame, str]:
    """Export the valid preference pairs (as `llmops data prefs export`); returns (counts, status)."""
    try:
        report = export_preferences(workspace)
    except LLMOpsError as exc:
        return pairs_table(workspace), failed(exc)
    names = ", ".join(d.name for d in report.datasets)
    return pairs_table(workspace), f"✅ {report.stats.valid_pairs} pairs → `{report.latest_path}` ({names})"


def validate(workspace: Workspace, name: str) -> str:
    """Validate a registered dataset (as `llmops data validate`): ok, or one `file:line: field: problem` a line."""
    try:
        report = validate_dataset(workspace, name or "")
    except LLMOpsError as exc:
        return failed(exc)
    if report.ok:
        return f"✅ `{report.path}`: {report.rows} rows, valid {report.format}"
    return "\n".join([f"❌ `{report.path}` ({report.format}):", *(f"- {e}" for e in report.errors)])


def _preferences_panel(workspace: Workspace) -> gr.Dataframe:
    counts = gr.Dataframe(label="Votes and valid pairs", headers=list(PAIR_COLUMNS), interactive=False)
    export_btn = gr.Button("Export preference pairs (LLaMA-Factory + TRL)")
    status = gr.Markdown()

    export_btn.click(lambda: export_pairs(workspace), outputs=[counts, status])
    return counts


def _datasets_panel(workspace: Workspace) -> tuple[gr.Dataframe, gr.Dropdown]:
    table = gr.Dataframe(label="Registered datasets", headers=list(DATASET_COLUMNS), interactive=False)
    with gr.Row():
        choice = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True)
        validate_btn = gr.Button("Validate")
        refresh_btn = gr.Button("Refresh")
    result = gr.Markdown()

    validate_btn.click(lambda name: validate(workspace, name), inputs=choice, outputs=result)
    refresh_btn.click(lambda: _datasets_values(workspace), outputs=[table, choice])
    return table, choice


def _datasets_values(workspace: Workspace) -> tuple[pd.DataFrame, Any]:
    table = datasets_table(workspace)
    return table, gr.update(choices=list(table["name"]))


def render(workspace: Workspace) -> Section:
    with gr.Accordion("Domain corpus (CPT)", open=True):
        _corpus_panel(workspace)
    with gr.Accordion("Instruction data (SFT, Self-Instruct)", open=True):
        instructions_panel.render(workspace)
    with gr.Accordion("Preference data (DPO)", open=True):
        counts = _preferences_panel(workspace)
    with gr.Accordion("Datasets", open=True):
        table, choice = _datasets_panel(workspace)

    def load() -> list[Any]:
        return [pairs_table(workspace), *_datasets_values(workspace)]

    return Section("data", load, [counts, table, choice])
