"""Instruction data (spec 4.2, 8.2 step 1): generate N Self-Instruct samples (template or LLM mode) into a
registered SFT dataset (the same call as `llmops data self-instruct`), then preview them. LLM mode uses the
endpoint of the workspace settings (data.llm_base_url, data.llm_model); the page only shows it."""

import json
from typing import Any

import gradio as gr
import pandas as pd

from llmops.data.self_instruct import SelfInstructReport, generate_sft_dataset
from llmops.data.self_instruct_llm import settings_endpoint
from llmops.errors import LLMOpsError
from llmops.ui.section import failed, frame
from llmops.workspace import Workspace

PREVIEW_COLUMNS = ("system", "user", "assistant")
PREVIEW_ROWS = 50
MODES = ("template", "llm")


def preview(samples: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{m["role"]: m["content"] for m in sample.get("messages", [])} for sample in samples[:PREVIEW_ROWS]]
    return frame(rows, PREVIEW_COLUMNS)


def summary(report: SelfInstructReport) -> str:
    stats = report.stats
    types = ", ".join(f"{name} {count}" for name, count in sorted(stats.by_type.items()))
    return (f"✅ {report.dataset.rows} samples saved to `{report.path}` as dataset **{report.dataset.name}**\n"
            f"- by task type: {types}\n- candidates: {stats.candidates}, rejected as similar (ROUGE-L): "
            f"{stats.rejected_similar}, answers with a closing phrase: {stats.closings}")


def endpoint_text(workspace: Workspace) -> str:
    """The configured LLM endpoint, as the page shows it (never the key)."""
    data = workspace.settings.data
    if not (data.llm_base_url and data.llm_model):
        return "LLM mode: not configured (set data.llm_base_url and data.llm_model in the workspace settings)"
    return f"LLM mode: `{data.llm_model}` at `{data.llm_base_url}` (key from ${data.llm_api_key_env})"


def generate(workspace: Workspace, count: float, mode: str) -> tuple[pd.DataFrame, str]:
    """Generate and save `count` samples in `mode` (template | llm, the settings' endpoint)."""
    try:
        if mode not in MODES:
            raise LLMOpsError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        endpoint = settings_endpoint(workspace.settings.data) if mode == "llm" else None
        report = generate_sft_dataset(workspace, int(count), use_mock=mode == "template", endpoint=endpoint)
        samples = json.loads(report.path.read_text(encoding="utf-8"))
    except LLMOpsError as exc:
        return frame([], PREVIEW_COLUMNS), failed(exc)
    return preview(samples), summary(report)


def render(workspace: Workspace) -> None:
    with gr.Row():
        count = gr.Number(label="Instructions to generate", value=workspace.settings.data.num_instructions,
                          precision=0, minimum=1)
        mode = gr.Radio(label="Mode", choices=list(MODES), value="template", elem_id="self-instruct-mode")
        gr.Markdown(endpoint_text(workspace), elem_id="self-instruct-endpoint")
    button = gr.Button("Generate and save instruction data", variant="primary")
    status = gr.Markdown()
    table = gr.Dataframe(label="Preview", headers=list(PREVIEW_COLUMNS), interactive=False, wrap=True)
    button.click(lambda *values: generate(workspace, *values), inputs=[count, mode], outputs=[table, status])
