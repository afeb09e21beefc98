"""A tiny SFT started from the UI's "Start training" runs the CLI's pipeline: trained in a llamafactory-cli
subprocess, merged and registered as a chat version with the same lineage as a CLI run's."""

import time
from pathlib import Path

import gradio as gr
import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.data.registry import get_dataset, publish_dataset
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.train.network import BASE_MODEL
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.ui import train_forms, train_tab
from llmops.workspace import Workspace, init_workspace, open_workspace

pytestmark = pytest.mark.integration

TINY = ["max_steps=3", "logging_steps=1", "per_device_train_batch_size=2", "gradient_accumulation_steps=1",
        "warmup_steps=0", "cutoff_len=64", "learning_rate=1e-3", "save_steps=1000"]


def _lineage(version: ModelVersion) -> dict[str, object]:
    """What a registered version says about where it comes from (its name, paths and run aside)."""
    return {"kind": version.kind, "stage": version.stage, "parent": version.parent, "base_model": version.base_model,
            "merged": version.merged, "datasets": version.datasets, "status": version.status,
            "metrics": sorted(version.metrics)}


def _wait_for(outcomes: dict[str, str], run_id: str, seconds: float = 300) -> str:
    deadline = time.monotonic() + seconds
    while run_id not in outcomes:
        assert time.monotonic() < deadline, f"run {run_id}: no outcome after {seconds:g}s"
        time.sleep(0.5)
    return outcomes[run_id]


@pytest.fixture
def ws(tmp_path: Path, tiny_model_dir: Path, tiny_model_texts: list[str]) -> Workspace:
    workspace = init_workspace(tmp_path / "ws")
    rows = [{"messages": [{"role": "user", "content": f"Tell me fact {i}."},
                          {"role": "assistant", "content": text[:80]}]} for i, text in enumerate(tiny_model_texts)]
    publish_dataset(workspace, "ui_sft", workspace.stage_data_dir("sft") / "ui_sft.json", rows, "sft", "messages")
    return open_workspace(workspace.root, [f"train.base_model={tiny_model_dir}"])


def test_start_training_in_the_ui_registers_a_version_like_the_cli(ws: Workspace, tiny_model_dir: Path) -> None:
    with gr.Blocks():
        form = train_forms.render_form(ws, "SFT")
    fields = tuple(widget.preprocess(widget.value) for widget in form.fields)
    config_path, _, _ = train_forms.generate(ws, form, ("ui_sft", BASE_MODEL, *fields, "\n".join(TINY)))
    trainer, outcomes = LLaMAFactoryTrainer(ws), {}
    run_id, message = train_tab.start_run(trainer, outcomes, config_path)
    assert run_id.startswith("sft-") and "registered like the CLI's" in message
    assert _wait_for(outcomes, run_id) == "registered chat-v1.0"
    from_ui = registry.get_version(ws, "chat-v1.0")
    assert (from_ui.run_id, from_ui.config_path) == (run_id, str(Path(config_path).resolve()))
    assert trainer.get_status(run_id).status == "succeeded"
    assert "registered chat-v1.0" in train_tab.watch(trainer, run_id, outcomes)[0]

    result = CliRunner().invoke(app, ["train", "sft", "--from-base", "--dataset", "ui_sft", "-w", str(ws.root),
                                      "--set", f"train.base_model={tiny_model_dir}", *TINY])
    assert result.exit_code == 0, result.output
    from_cli = registry.get_version(ws, "chat-v2.0")
    assert _lineage(from_ui) == _lineage(from_cli)
    assert from_ui.base_model == str(tiny_model_dir) and from_ui.merged and from_ui.parent is None
    assert from_ui.datasets[0]["sha256"] == get_dataset(ws, "ui_sft").sha256
    for version in (from_ui, from_cli):
        assert Path(version.path).parent == ws.models_dir and (Path(version.path) / "config.json").is_file()
