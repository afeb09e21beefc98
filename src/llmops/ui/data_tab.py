"""Data tab (spec 4, 8.2 step 1): domain corpus, instruction data, eval sets, preference pairs, datasets.

Documents are uploaded into documents/uploads/ or the preset is copied into documents/preset/. "Process
documents" runs `llmops data corpus`'s processing (`data.corpus.process_corpus`) and shows its stats and
sample chunks, writing nothing; the result is kept in the session (gr.State) and "Save corpus" writes and
registers exactly it (`data.corpus.publish_corpus`). Instructions work the same way (instructions_panel).
"""

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from gradio.events import Dependency
from gradio.utils import get_upload_folder

from llmops.data.corpus import CorpusReport, CorpusStats, ProcessedCorpus, process_corpus, publish_corpus
from llmops.data.preferences import export_preferences, pair_stats
from llmops.data.registry import list_datasets, validate_registered
from llmops.data.uploads import UPLOAD_SUFFIXES, network_documents, save_uploads
from llmops.demo.preset import copy_preset_documents
from llmops.errors import LLMOpsError
from llmops.ui import eval_set_panel, instructions_panel
from llmops.ui.section import Section, failed, frame, number, when
from llmops.workspace import Workspace

DATASET_COLUMNS = ("name", "kind", "format", "rows", "version", "file_name", "sha256", "created")
PAIR_COLUMNS = ("votes", "valid_pairs", "ties", "both_bad", "identical", "empty", "duplicates", "capped")
CHUNK_COLUMNS = ("chunk", "characters", "text")
SAMPLE_CHUNKS = 20


def preset_folder(workspace: Workspace) -> Path:
    return workspace.documents_dir / "preset"


def stats_lines(stats: CorpusStats, skipped: list[str]) -> list[str]:
    lines = [
        f"- documents read: {stats.documents} (empty after cleaning: {stats.empty})",
        f"- duplicates removed: {stats.exact_duplicates} exact, {stats.near_duplicates} near, "
        f"{stats.duplicate_chunks} repeated chunks",
        f"- chunks: {stats.chunks}, tokens: {stats.tokens}, longest chunk: {stats.max_chunk_tokens} tokens",
    ]
    return lines + [f"- skipped: {reason}" for reason in skipped]


def corpus_report(report: CorpusReport) -> str:
    saved = f"✅ saved `{report.path}` as dataset **{report.dataset.name}** (version {report.dataset.version})"
    return "\n".join([saved, *stats_lines(report.stats, report.skipped)])


def sample_chunks(processed: ProcessedCorpus | None) -> pd.DataFrame:
    rows = processed.rows[:SAMPLE_CHUNKS] if processed else []
    return frame([{"chunk": i + 1, "characters": len(r["text"]), "text": r["text"]} for i, r in enumerate(rows)],
                 CHUNK_COLUMNS)


def datasets_table(workspace: Workspace) -> pd.DataFrame:
    rows = [dict(vars(d), sha256=d.sha256[:12], created=when(d.created_at)) for d in list_datasets(workspace)]
    return frame(rows, DATASET_COLUMNS)


def pairs_table(workspace: Workspace) -> pd.DataFrame:
    return frame([vars(pair_stats(workspace))], PAIR_COLUMNS)


def _listed(workspace: Workspace, paths: list[Path]) -> str:
    """Document paths as the corpus field takes them: relative to documents/, one a line."""
    return "\n".join(p.relative_to(workspace.documents_dir).as_posix() for p in paths)


def load_preset(workspace: Workspace) -> tuple[str, str]:
    """Copy the bundled documents into documents/preset/; returns (their paths one a line, a status)."""
    copies = copy_preset_documents(preset_folder(workspace))
    return _listed(workspace, copies), f"loaded {len(copies)} preset documents"


def uploaded(files: list[str]) -> list[Path]:
    """The files of an upload event, each inside Gradio's upload folder (resolved, so a symlink leaving it is
    refused too); LLMOpsError naming the first that is not. Gradio checks this itself before the handler runs
    (its app is marked launched); this keeps a file the browser did not upload out of documents/."""
    folder = Path(get_upload_folder()).resolve()
    for file in files:
        if not Path(file).resolve().is_relative_to(folder):
            raise LLMOpsError(f"{Path(file).name}: not a file uploaded through this page")
    return [Path(file) for file in files]


def upload(workspace: Workspace, files: list[str] | None, current: str) -> tuple[str, str]:
    """Copy uploaded files into documents/uploads/ and add them to the corpus field; returns (field, status)."""
    try:
        copies = save_uploads(workspace, uploaded(files or []))
    except LLMOpsError as exc:
        return current, failed(exc)
    text = "\n".join(part for part in (current.strip(), _listed(workspace, copies)) if part)
    names = ", ".join(copy.name for copy in copies)
    return text, f"uploaded {len(copies)} document{'s' * (len(copies) != 1)} to `{copies[0].parent}`: {names}"


def upload_once(workspace: Workspace, files: list[str] | None, current: str) -> tuple[str, str, None]:
    """The upload event: `upload`, then the upload widget emptied. Gradio sends the widget's whole value, the
    files of earlier uploads too, so a file left in it would be copied again (`notes_2.md`) on the next upload;
    the corpus field lists what was copied."""
    return (*upload(workspace, files, current), None)


def process(workspace: Workspace, text: str, size: float | None, overlap: float | None,
            near: float) -> tuple[ProcessedCorpus | None, str, pd.DataFrame]:
    """Process the listed documents (inside documents/) with the settings' tokenizer, as `llmops data corpus`
    does, writing nothing; returns (the result, its stats, sample chunks)."""
    try:
        files = network_documents(workspace, text.splitlines())
        processed = process_corpus(workspace, files, chunk_size=int(number(size, "chunk_size")),
                                   chunk_overlap=int(number(overlap, "chunk_overlap")), near_dup_threshold=near)
    except LLMOpsError as exc:
        return None, failed(exc), sample_chunks(None)
    preview = [f"processed, **not saved yet** ({len(processed.rows)} chunks): press Save corpus to register them",
               *stats_lines(processed.stats, processed.skipped)]
    return processed, "\n".join(preview), sample_chunks(processed)


def save_corpus(workspace: Workspace, processed: ProcessedCorpus | None) -> str:
    """Write and register the processed corpus shown (the session's), as `llmops data corpus` does."""
    if processed is None:
        return failed(LLMOpsError("corpus: press Process documents first"))
    try:
        return corpus_report(publish_corpus(workspace, processed))
    except LLMOpsError as exc:
        return failed(exc)


def _corpus_panel(workspace: Workspace) -> Dependency:
    """The corpus controls; returns the Save click's event (the datasets lists refresh after it)."""
    settings = workspace.settings
    with gr.Row():
        with gr.Column(scale=3):
            paths = gr.Textbox(label="Documents in documents/ (files or folders relative to it, one a line)",
                               lines=4, elem_id="corpus-paths")
            files = gr.File(label=f"Upload documents ({' '.join(UPLOAD_SUFFIXES)}) to documents/uploads/",
                            file_count="multiple", file_types=list(UPLOAD_SUFFIXES), elem_id="documents-upload")
        with gr.Column(scale=2):
            gr.Textbox(label="Tokenizer (settings: data.tokenizer, else train.base_model)", interactive=False,
                       value=settings.data.tokenizer or settings.train.base_model)
            chunk_size = gr.Number(label="chunk_size (tokens)", value=settings.data.chunk_size, precision=0,
                                   minimum=16)
            overlap = gr.Number(label="chunk_overlap (tokens)", value=settings.data.chunk_overlap, precision=0,
                                minimum=0)
            threshold = gr.Slider(label="near_dup_threshold", minimum=0.05, maximum=1.0, step=0.05,
                                  value=settings.data.near_dup_threshold)
    with gr.Row():
        load_btn = gr.Button("Load preset documents")
        process_btn = gr.Button("Process documents", elem_id="corpus-process")
        save_btn = gr.Button("Save corpus", variant="primary", elem_id="corpus-save")
    report = gr.Markdown(elem_id="corpus-report")
    chunks = gr.Dataframe(label="Sample chunks", headers=list(CHUNK_COLUMNS), interactive=False, wrap=True,
                          elem_id="corpus-chunks")
    processed = gr.State(None)

    load_btn.click(lambda: load_preset(workspace), outputs=[paths, report])
    files.upload(lambda given, current: upload_once(workspace, given, current), inputs=[files, paths],
                 outputs=[paths, report, files])
    process_btn.click(lambda *values: process(workspace, *values), inputs=[paths, chunk_size, overlap, threshold],
                      outputs=[processed, report, chunks])
    return save_btn.click(lambda result: save_corpus(workspace, result), inputs=processed, outputs=report)


def export_pairs(workspace: Workspace) -> tuple[pd.DataFrame, str]:
    """Export the valid preference pairs (as `llmops data prefs export`); returns (counts, status)."""
    try:
        report = export_preferences(workspace)
    except LLMOpsError as exc:
        return pairs_table(workspace), failed(exc)
    names = ", ".join(d.name for d in report.datasets)
    return pairs_table(workspace), f"✅ {report.stats.valid_pairs} pairs → `{report.latest_path}` ({names})"


def validate(workspace: Workspace, name: str) -> str:
    """Validate a registered dataset by name (as `llmops data validate NAME`, never a path): ok, or one
    `file:line: field: problem` a line."""
    try:
        if not name:
            raise LLMOpsError("dataset: choose a registered dataset to validate (press Refresh for new ones)")
        report = validate_registered(workspace, name)
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
        corpus_saved = _corpus_panel(workspace)
    with gr.Accordion("Instruction data (SFT, Self-Instruct)", open=True):
        instructions_saved = instructions_panel.render(workspace)
    with gr.Accordion("Evaluation set (held out of training)", open=True):
        sources = eval_set_panel.render(workspace)
    with gr.Accordion("Preference data (DPO)", open=True):
        counts = _preferences_panel(workspace)
    with gr.Accordion("Datasets", open=True):
        table, choice = _datasets_panel(workspace)

    def lists() -> list[Any]:
        return [*_datasets_values(workspace), *eval_set_panel.source_choices(workspace)]

    for saved in (corpus_saved, instructions_saved, sources.built):
        saved.then(lists, outputs=[table, choice, *sources.selectors])

    def load() -> list[Any]:
        return [pairs_table(workspace), *lists()]

    return Section("data", load, [counts, table, choice, *sources.selectors])
