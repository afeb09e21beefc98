"""Eval-set builder (issue 11; spec 6): the held-out evaluation set of the loop, built by `llmops data eval-set`'s
library calls (`data.eval_sets`) from one of three sources picked by dropdowns: a held-out share of a registered
SFT dataset (removed from it: a new version of it is registered), the prompts of voted arena battles, or a
prompts file inside documents/ (uploaded with the documents). Shows the count and a sample of what it registered.
"""

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
from gradio.events import Dependency

from llmops.data import eval_sets
from llmops.data.documents import expand_paths
from llmops.data.formats import read_records
from llmops.data.uploads import network_documents
from llmops.errors import LLMOpsError
from llmops.train.network import dataset_choices
from llmops.ui.section import failed, frame, number
from llmops.workspace import Workspace

SOURCES = (("held-out share of an SFT dataset", "share"), ("prompts of voted arena battles", "arena"),
           ("prompts file in documents/", "prompts"))
PROMPT_SUFFIXES = (".txt", ".jsonl")
SAMPLE_COLUMNS = ("prompt", "reference")
SAMPLE_ROWS = 10
DEFAULT_SHARE = 0.1


@dataclass(frozen=True)
class EvalSetControls:
    """The builder's dropdowns whose choices come from the workspace, and the Build click's event."""

    selectors: list[gr.Dropdown]
    built: Dependency


def prompt_files(workspace: Workspace) -> list[str]:
    """Prompt files (.txt, .jsonl) inside documents/, relative to it."""
    folder = workspace.documents_dir
    if not folder.is_dir():
        return []
    return [p.relative_to(folder).as_posix() for p in expand_paths([folder]) if p.suffix.lower() in PROMPT_SUFFIXES]


def source_choices(workspace: Workspace) -> tuple[Any, Any]:
    """Updates of the SFT dataset and prompts file dropdowns: what is there now, the newest dataset selected."""
    datasets, files = dataset_choices(workspace, "sft"), prompt_files(workspace)
    return (gr.update(choices=datasets, value=datasets[0] if datasets else None),
            gr.update(choices=files, value=files[0] if files else None))


def _report(workspace: Workspace, source: str, dataset: str | None, share: float | None, seed: float | None,
            file: str | None) -> eval_sets.EvalSetReport:
    if source == "share":
        if not dataset:
            raise LLMOpsError("eval set: no SFT dataset is registered to hold a share out of")
        return eval_sets.eval_set_from_sft(workspace, number(share, "held-out share"), int(number(seed, "seed")),
                                           dataset)
    if source == "arena":
        return eval_sets.eval_set_from_arena(workspace)
    if source == "prompts":
        [path] = network_documents(workspace, [file or ""])
        return eval_sets.eval_set_from_prompts(workspace, path)
    raise LLMOpsError(f"eval set source {source!r}: expected one of {', '.join(value for _, value in SOURCES)}")


def described(report: eval_sets.EvalSetReport) -> str:
    lines = [f"✅ eval set **{report.dataset.name}**: {report.dataset.rows} prompts ({report.references} with a "
             f"reference) from {report.source}, `{report.path}`, sha256 {report.dataset.sha256[:12]}"]
    if report.sft is not None:
        lines.append(f"- removed from SFT dataset **{report.sft.name}**: version {report.sft.version}, "
                     f"{report.sft.rows} rows in `{report.sft.file_name}`")
    return "\n".join(lines)


def build(workspace: Workspace, source: str, dataset: str | None, share: float | None, seed: float | None,
          file: str | None) -> tuple[str, pd.DataFrame]:
    """Build and register an eval set from `source` (share | arena | prompts); returns (status, sample rows)."""
    try:
        report = _report(workspace, source, dataset, share, seed, file)
    except LLMOpsError as exc:
        return failed(exc), frame([], SAMPLE_COLUMNS)
    rows = [row for _, row in read_records(report.path, workspace.settings.data.max_file_bytes)[:SAMPLE_ROWS]]
    return described(report), frame(rows, SAMPLE_COLUMNS)


def render(workspace: Workspace) -> EvalSetControls:
    with gr.Row():
        source = gr.Dropdown(label="Eval-set source", choices=list(SOURCES), value="share", elem_id="eval-source")
        dataset = gr.Dropdown(label="SFT dataset to hold out from", choices=[], elem_id="eval-sft-dataset")
        share = gr.Number(label="Held-out share", value=DEFAULT_SHARE, minimum=0.01, maximum=0.99,
                          elem_id="eval-share")
        seed = gr.Number(label="Seed", value=0, precision=0, elem_id="eval-seed")
        file = gr.Dropdown(label="Prompts file (in documents/)", choices=[], elem_id="eval-prompts-file")
    button = gr.Button("Build eval set", variant="primary", elem_id="eval-build")
    status = gr.Markdown(elem_id="eval-status")
    sample = gr.Dataframe(label="Eval-set sample", headers=list(SAMPLE_COLUMNS), interactive=False, wrap=True,
                          elem_id="eval-sample")
    built = button.click(lambda *values: build(workspace, *values), inputs=[source, dataset, share, seed, file],
                         outputs=[status, sample])
    return EvalSetControls([dataset, file], built)
