"""Instruction data (spec 4.2, 8.2 step 1): "Generate instructions" runs `llmops data self-instruct`'s
generation (`data.self_instruct.generate_sft_records`, template or LLM mode) and previews the samples grouped by
task type, writing nothing; the result is kept in the session (gr.State) and "Save instructions" writes and
registers exactly it (`publish_sft_records`). LLM mode uses the endpoint of the workspace settings
(data.llm_base_url, data.llm_model); the page only shows it."""

from collections import Counter

import gradio as gr
import pandas as pd
from gradio.events import Dependency

from llmops.data.self_instruct import (
    GeneratedInstructions,
    SelfInstructReport,
    generate_sft_records,
    publish_sft_records,
)
from llmops.data.self_instruct_llm import settings_endpoint
from llmops.data.templates import TASK_TYPES
from llmops.errors import LLMOpsError
from llmops.ui.section import failed, frame, number
from llmops.workspace import Workspace

PREVIEW_COLUMNS = ("task_type", "user", "assistant")
PREVIEW_PER_TYPE = 10
MODES = ("template", "llm")


def type_order(task_type: str) -> tuple[int, str]:
    """The six task types in their order (data/seed_tasks.py), then any other (LLM mode's) by name."""
    return (TASK_TYPES.index(task_type) if task_type in TASK_TYPES else len(TASK_TYPES), task_type)


def preview(generated: GeneratedInstructions | None) -> pd.DataFrame:
    """Up to PREVIEW_PER_TYPE samples of each task type, grouped by type."""
    pairs = zip(generated.task_types, generated.records, strict=True) if generated else iter(())
    shown: Counter[str] = Counter()
    rows = []
    for task_type, record in sorted(pairs, key=lambda pair: type_order(pair[0])):
        shown[task_type] += 1
        if shown[task_type] <= PREVIEW_PER_TYPE:
            rows.append({"task_type": task_type, **{m["role"]: m["content"] for m in record["messages"]}})
    return frame(rows, PREVIEW_COLUMNS)


def by_type(generated: GeneratedInstructions) -> str:
    counts = Counter(generated.task_types)
    return ", ".join(f"{name} {counts[name]}" for name in sorted(counts, key=type_order))


def generated_text(generated: GeneratedInstructions) -> str:
    stats = generated.stats
    return (f"generated {len(generated.records)} samples, **not saved yet**: press Save instructions to register "
            f"them\n- by task type: {by_type(generated)}\n- candidates: {stats.candidates}, rejected as similar "
            f"(ROUGE-L): {stats.rejected_similar}, answers with a closing phrase: {stats.closings}")


def summary(report: SelfInstructReport) -> str:
    return f"✅ {report.dataset.rows} samples saved to `{report.path}` as dataset **{report.dataset.name}**"


def endpoint_text(workspace: Workspace) -> str:
    """The configured LLM endpoint, as the page shows it (never the key)."""
    data = workspace.settings.data
    if not (data.llm_base_url and data.llm_model):
        return "LLM mode: not configured (set data.llm_base_url and data.llm_model in the workspace settings)"
    return f"LLM mode: `{data.llm_model}` at `{data.llm_base_url}` (key from ${data.llm_api_key_env})"


def generate(workspace: Workspace, count: float | None,
             mode: str) -> tuple[GeneratedInstructions | None, pd.DataFrame, str]:
    """Generate `count` samples in `mode` (template | llm, the settings' endpoint), writing nothing; returns
    (the samples, their preview by task type, a status)."""
    try:
        if mode not in MODES:
            raise LLMOpsError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        endpoint = settings_endpoint(workspace.settings.data) if mode == "llm" else None
        generated = generate_sft_records(workspace, int(number(count, "instructions to generate")),
                                         use_mock=mode == "template", endpoint=endpoint)
    except LLMOpsError as exc:
        return None, preview(None), failed(exc)
    return generated, preview(generated), generated_text(generated)


def save(workspace: Workspace, generated: GeneratedInstructions | None) -> str:
    """Write and register the samples shown (the session's) as an SFT dataset, as `llmops data self-instruct`."""
    if generated is None:
        return failed(LLMOpsError("instructions: press Generate instructions first"))
    try:
        return summary(publish_sft_records(workspace, generated))
    except LLMOpsError as exc:
        return failed(exc)


def render(workspace: Workspace) -> Dependency:
    """The instruction controls; returns the Save click's event (the datasets lists refresh after it)."""
    with gr.Row():
        count = gr.Number(label="Instructions to generate", value=workspace.settings.data.num_instructions,
                          precision=0, minimum=1, elem_id="self-instruct-count")
        mode = gr.Radio(label="Mode", choices=list(MODES), value="template", elem_id="self-instruct-mode")
        gr.Markdown(endpoint_text(workspace), elem_id="self-instruct-endpoint")
    with gr.Row():
        generate_btn = gr.Button("Generate instructions", elem_id="self-instruct-generate")
        save_btn = gr.Button("Save instructions", variant="primary", elem_id="self-instruct-save")
    status = gr.Markdown(elem_id="self-instruct-status")
    table = gr.Dataframe(label="Preview by task type", headers=list(PREVIEW_COLUMNS), interactive=False, wrap=True,
                         elem_id="self-instruct-preview")
    generated = gr.State(None)
    generate_btn.click(lambda *values: generate(workspace, *values), inputs=[count, mode],
                       outputs=[generated, table, status])
    return save_btn.click(lambda samples: save(workspace, samples), inputs=generated, outputs=status)
