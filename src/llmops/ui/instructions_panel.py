"""Instruction data (spec 4.2, 8.2 step 1): generate N Self-Instruct samples (template or LLM mode) into a
registered SFT dataset (the same call as `llmops data self-instruct`), then preview them."""

import json
from typing import Any

import gradio as gr
import pandas as pd

from llmops.data.self_instruct import SelfInstructReport, generate_sft_dataset
from llmops.data.self_instruct_llm import LLMEndpoint
from llmops.errors import LLMOpsError
from llmops.ui.section import failed, frame
from llmops.workspace import Workspace

PREVIEW_COLUMNS = ("system", "user", "assistant")
PREVIEW_ROWS = 50


def preview(samples: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{m["role"]: m["content"] for m in sample.get("messages", [])} for sample in samples[:PREVIEW_ROWS]]
    return frame(rows, PREVIEW_COLUMNS)


def summary(report: SelfInstructReport) -> str:
    stats = report.stats
    types = ", ".join(f"{name} {count}" for name, count in sorted(stats.by_type.items()))
    return (f"✅ {report.dataset.rows} samples saved to `{report.path}` as dataset **{report.dataset.name}**\n"
            f"- by task type: {types}\n- candidates: {stats.candidates}, rejected as similar (ROUGE-L): "
            f"{stats.rejected_similar}, answers with a closing phrase: {stats.closings}")


def generate(workspace: Workspace, count: float, mode: str, url: str, model: str,
             key: str) -> tuple[pd.DataFrame, str]:
    try:
        endpoint = LLMEndpoint(url.strip(), model.strip(), key or "EMPTY") if mode == "llm" else None
        if endpoint is not None and not (endpoint.base_url and endpoint.model):
            raise LLMOpsError("LLM mode: base_url and model are required")
        report = generate_sft_dataset(workspace, int(count), use_mock=mode == "template", endpoint=endpoint)
        samples = json.loads(report.path.read_text(encoding="utf-8"))
    except LLMOpsError as exc:
        return frame([], PREVIEW_COLUMNS), failed(exc)
    return preview(samples), summary(report)


def render(workspace: Workspace) -> None:
    with gr.Row():
        count = gr.Number(label="Instructions to generate", value=workspace.settings.data.num_instructions,
                          precision=0, minimum=1)
        mode = gr.Radio(label="Mode", choices=["template", "llm"], value="template")
        url = gr.Textbox(label="LLM base_url (OpenAI-compatible)")
        model = gr.Textbox(label="LLM model")
        key = gr.Textbox(label="LLM api_key", type="password")
    button = gr.Button("Generate and save instruction data", variant="primary")
    status = gr.Markdown()
    table = gr.Dataframe(label="Preview", headers=list(PREVIEW_COLUMNS), interactive=False, wrap=True)
    button.click(lambda *values: generate(workspace, *values), inputs=[count, mode, url, model, key],
                 outputs=[table, status])
