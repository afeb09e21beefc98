"""The web UI's tabs: every tab renders on an empty workspace and shows what the workspace holds."""

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from llmops import db
from llmops.data.preferences import PreferenceCollector, export_preferences
from llmops.data.registry import publish_dataset
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.models.metrics import request_series
from llmops.models.rollouts import start_rollout
from llmops.serve.gateway import create_app
from llmops.train import runs
from llmops.train.configs import check_network_value
from llmops.train.network import BASE_MODEL, default_hyperparameters
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.ui import monitor_tab, train_forms, train_tab
from llmops.ui.app import assemble, mount_ui
from llmops.ui.gateway_client import GatewayClient
from llmops.workspace import Workspace

TabValues = Callable[[list[Any]], dict[str, list[Any]]]


@pytest.fixture
def gateway(workspace: Workspace) -> Iterator[FastAPI]:
    app = create_app(workspace)
    yield app
    app.state.serve.engine.close()


def test_every_tab_renders_on_an_empty_workspace(workspace: Workspace, gateway: FastAPI, tab_values: TabValues) -> None:
    blocks, sections = assemble(workspace, gateway)
    assert isinstance(blocks, gr.Blocks)
    values = tab_values(sections)
    assert [s.name for s in sections] == ["data", "train", "arena", "models", "loop", "monitor"]
    assert values["data"][0]["votes"].tolist() == [0]
    assert values["data"][1].empty
    assert values["train"][0] == "" and values["train"][4].empty
    assert values["arena"][0]["choices"] == [] and values["arena"][2].empty and values["arena"][3:5] == [0, 0]
    assert values["models"][0].empty
    assert "production: **none**" in values["loop"][4] and values["loop"][8].empty
    assert values["loop"][3] == "no candidate evaluated yet"
    assert values["monitor"][0].empty


def _fill(workspace: Workspace) -> None:
    path = workspace.stage_data_dir("sft") / "sft_small.json"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    publish_dataset(workspace, "sft_small", path, [{"messages": messages}], "sft", "messages")
    v1 = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="tiny-base",
                                   path="/models/chat-v1.0", merged=True)
    v2 = registry.register_version(workspace, kind="chat", stage="dpo", parent=v1.name, base_model="tiny-base",
                                   path="/ckpt/dpo", merged=False)
    registry.set_alias(workspace, "production", v1.name)
    start_rollout(workspace, v2.name, by="cli")
    PreferenceCollector(workspace).collect_preference("q", "good", "bad", "A", {"source": "test"})
    now = time.time()
    with workspace.engine.begin() as conn:
        conn.execute(db.requests.insert(), [
            {"id": f"r{i}", "model": v1.name, "created_at": now - 60 + i, "latency_ms": 10.0 * (i + 1),
             "completion_tokens": 5, "ok": i != 0, "error": "boom" if i == 0 else ""} for i in range(4)
        ])


def test_tabs_show_the_workspace(workspace: Workspace, gateway: FastAPI, tab_values: TabValues) -> None:
    _fill(workspace)
    values = tab_values(assemble(workspace, gateway)[1])
    assert values["data"][0]["valid_pairs"].tolist() == [1]
    assert "sft_small" in values["data"][1]["name"].tolist()
    assert values["arena"][3:5] == [1, 1]
    versions = values["models"][0].set_index("name")
    assert versions.loc["chat-v1.1", "lineage"] == "tiny-base → chat-v1.0 → chat-v1.1"
    assert versions.loc["chat-v1.0", "aliases"] == "production"
    assert versions.loc["chat-v1.1", "merged"] == "adapter"
    assert "candidate **chat-v1.1** at stage 1" in values["loop"][4]
    assert values["loop"][5] == pytest.approx(0.05)
    assert values["loop"][8]["event"].tolist() == ["started"]
    monitor = values["monitor"][0].set_index("model")
    assert monitor.loc["chat-v1.0", "requests"] == 4
    assert monitor.loc["chat-v1.0", "error_rate"] == pytest.approx(0.25)


def test_request_series_buckets_requests_per_version(workspace: Workspace) -> None:
    with workspace.engine.begin() as conn:
        conn.execute(db.requests.insert(), [
            {"id": "a", "model": "m1", "created_at": 1000.0, "latency_ms": 5.0, "ok": True, "error": ""},
            {"id": "b", "model": "m1", "created_at": 1000.5, "latency_ms": 7.0, "ok": False, "error": "x"},
            {"id": "c", "model": "m2", "created_at": 1100.0, "latency_ms": 9.0, "ok": True, "error": ""},
        ])
    series = monitor_tab.series_frame(request_series(workspace, since=None, buckets=10), monitor_tab.SERIES_COLUMNS)
    assert series[["model", "requests", "error_rate"]].values.tolist() == [["m1", 2, 0.5], ["m2", 1, 0.0]]
    assert str(series["time"].iloc[0]) == "1970-01-01 00:16:40"
    assert request_series(workspace, since=2000.0) == []


def _sent_by_browser(widget: gr.components.Component) -> Any:
    """What Gradio's browser code sends for a widget left as rendered: an empty gr.Number without a placeholder
    shows and sends 0 (gradio/_frontend_code/number/Index.svelte), any other widget its value."""
    if isinstance(widget, gr.Number) and widget.value is None and not widget.placeholder:
        return 0
    return widget.value


def _form_values(form: train_forms.Form, overrides: str) -> tuple[Any, ...]:
    """What the Generate button hands the handler when nothing was changed but the overrides."""
    return (*(widget.preprocess(_sent_by_browser(widget)) for widget in form.inputs[:-1]), overrides)


@pytest.mark.parametrize("stage", list(train_forms.STAGES))
def test_every_train_form_default_is_accepted_by_its_own_field(workspace: Workspace, stage: str) -> None:
    with gr.Blocks():
        form = train_forms.render_form(workspace, stage)
    for name, widget in zip(form.names, form.fields, strict=True):
        sent = _sent_by_browser(widget)
        value = widget.preprocess(sent)  # gradio.Error when outside minimum/maximum or the choices
        if isinstance(widget, gr.Dropdown):
            assert sent in [choice for _, choice in widget.choices], name
        if value is not None and value != "":
            assert check_network_value(train_forms.STAGES[stage], name, value) == value, name
        assert value == default_hyperparameters(workspace, train_forms.STAGES[stage])[name], name


def test_sft_form_writes_the_spec_config_with_overrides(workspace: Workspace) -> None:
    _fill(workspace)
    with gr.Blocks():
        form = train_forms.render_form(workspace, "SFT")
    assert form.dataset.value == "sft_small" and form.model.value == BASE_MODEL
    path, text, notes = train_forms.generate(workspace, form, _form_values(form, "max_steps=5\n"))
    config = yaml.safe_load(text)
    assert Path(path).parent == workspace.configs_dir and yaml.safe_load(Path(path).read_text()) == config
    assert config["stage"] == "sft" and config["learning_rate"] == pytest.approx(5e-5)
    assert config["num_train_epochs"] == 3 and isinstance(config["num_train_epochs"], int)
    assert config["max_steps"] == 5 and config["template"] == workspace.settings.train.template
    assert config["dataset"] == "sft_small" and config["model_name_or_path"] == workspace.settings.train.base_model
    assert Path(config["output_dir"]).parent == (workspace.checkpoints_dir / "sft").resolve()
    assert config["trust_remote_code"] is False
    assert config["fp16"] is False and "fp16" in notes


def test_dpo_form_trains_a_new_lora_on_a_registered_version(workspace: Workspace, tmp_path: Path) -> None:
    merged = tmp_path / "chat-v1.0"
    merged.mkdir()
    version = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="tiny-base",
                                        path=str(merged), merged=True)
    PreferenceCollector(workspace).collect_preference("q", "good", "bad", "A")
    export_preferences(workspace)
    with gr.Blocks():
        form = train_forms.render_form(workspace, "DPO")
    assert form.dataset.value == "prefs" and (f"{version.name} (sft)", version.name) in form.model.choices
    values = list(_form_values(form, ""))
    values[1] = version.name
    config = yaml.safe_load(train_forms.generate(workspace, form, tuple(values))[1])
    assert "adapter_name_or_path" not in config and config["pref_beta"] == pytest.approx(0.1)
    assert config["model_name_or_path"] == str(merged) and config["dataset"] == "prefs"


def test_page_load_selects_the_running_run(workspace: Workspace) -> None:
    for run_id, status in (("sft-old", "running"), ("sft-new", "succeeded")):
        run_dir = workspace.runs_dir / run_id
        run_dir.mkdir(parents=True)
        (run_dir / runs.LOG_FILE).write_text(f"log of {run_id}\n")
        runs.insert_run(workspace, run_id, "sft", workspace.configs_dir / "c.yaml", str(run_dir / "out"), run_dir)
        if status != "running":
            with workspace.engine.begin() as conn:
                conn.execute(db.runs.update().where(db.runs.c.id == run_id).values(status=status))
    trainer = LLaMAFactoryTrainer(workspace)
    assert train_tab.selected_run(trainer) == "sft-old"
    status, log, curve = train_tab.watch(trainer, "sft-old")
    assert "**running**" in status and log == "log of sft-old" and isinstance(curve, pd.DataFrame)
    assert train_tab.watch(trainer, "nope")[0].startswith("❌")
    assert train_tab.runs_table(trainer)["final_loss"].tolist() == ["–", "–"]  # not a `null` cell


def test_a_failed_runs_outcome_does_not_repeat_its_log_tail(workspace: Workspace) -> None:
    error = "exit code 1\n--- log tail ---\nTraceback (most recent call last):\nRuntimeError: too few samples"
    status = runs.RunStatus(id="cpt-1", stage="pt", status="failed", pid=None, exit_code=1, config_path="c.yaml",
                            output_dir="out", run_dir="run", started_at=0.0, finished_at=1.0, error=error, metrics={})
    outcome = f"nothing registered: cpt run cpt-1 failed: {error}"
    assert train_tab.outcome_text(outcome, status) == "nothing registered: cpt run cpt-1 failed: exit code 1"
    merge = "nothing registered: merge of cpt-1 failed\nno adapter_model.safetensors in out/"
    assert train_tab.outcome_text(merge, status).endswith("failed\n\n```\nno adapter_model.safetensors in out/\n```")
    assert train_tab.outcome_text("registered chat-v1.0", status) == "registered chat-v1.0"


def test_admin_actions_need_the_token(workspace: Workspace, gateway: FastAPI) -> None:
    for kind_version in ("v1.0", "v2.0"):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="/p",
                                  merged=True, version=kind_version)
    client = GatewayClient(gateway)
    with pytest.raises(LLMOpsError, match="401"):
        asyncio.run(client.promote("wrong", "chat-v1.0"))
    assert asyncio.run(client.promote(workspace.admin_token(), "chat-v1.0"))["production"] == "chat-v1.0"
    asyncio.run(client.promote(workspace.admin_token(), "chat-v2.0"))
    assert asyncio.run(client.rollback(workspace.admin_token()))["production"] == "chat-v1.0"
    assert registry.aliases(workspace)["production"] == "chat-v1.0"


def test_gateway_serves_the_ui(workspace: Workspace) -> None:
    with TestClient(mount_ui(create_app(workspace), workspace), base_url="http://localhost") as client:
        page = client.get("/ui/")
        assert page.status_code == 200 and "llmops" in page.text
        assert client.get("/v1/models").status_code == 200


def _version(workspace: Workspace, tmp_path: Path, kind: str, version: str) -> str:
    folder = tmp_path / f"{kind}-{version}"
    folder.mkdir()
    stage = "pt" if kind == "completion" else "sft"
    return registry.register_version(workspace, kind=kind, stage=stage, parent=None, base_model="tiny-base",
                                     path=str(folder), merged=True, version=version).name


def _rendered_defaults(workspace: Workspace) -> dict[str, tuple[Any, Any]]:
    with gr.Blocks():
        forms = {stage: train_forms.render_form(workspace, stage) for stage in train_forms.STAGES}
    for form in forms.values():
        assert form.model.value in [value for _, value in form.model.choices]
        assert form.dataset.value is None or form.dataset.value in [value for _, value in form.dataset.choices]
    return {stage: (form.dataset.value, form.model.value) for stage, form in forms.items()}


def test_train_dropdowns_default_to_what_each_stage_starts_from(workspace: Workspace, tmp_path: Path,
                                                                 tab_values: TabValues) -> None:
    assert _rendered_defaults(workspace) == {stage: (None, BASE_MODEL) for stage in train_forms.STAGES}
    for name, stage in (("sft_old", "sft"), ("sft_new", "sft")):
        messages = [{"role": "user", "content": name}, {"role": "assistant", "content": "ok"}]
        publish_dataset(workspace, name, workspace.stage_data_dir(stage) / f"{name}.json", [{"messages": messages}],
                        stage, "messages")
    completion = _version(workspace, tmp_path, "completion", "v1.0")
    chat = _version(workspace, tmp_path, "chat", "v1.0")
    newest_chat = _version(workspace, tmp_path, "chat", "v2.0")
    defaults = _rendered_defaults(workspace)
    assert defaults["CPT"] == (None, BASE_MODEL) and defaults["SFT"] == ("sft_new", completion)
    assert defaults["DPO"] == (None, newest_chat)
    registry.set_alias(workspace, "production", chat)
    assert _rendered_defaults(workspace)["DPO"] == (None, chat)
    values = tab_values(assemble(workspace)[1])["train"]
    updates = dict(zip(train_forms.STAGES, zip(values[5::2], values[6::2], strict=True), strict=True))
    assert updates["SFT"][0]["value"] == "sft_new" and updates["SFT"][1]["value"] == completion
    assert updates["DPO"][1]["value"] == chat and updates["CPT"][1]["value"] == BASE_MODEL


def test_train_dropdowns_refresh_once_the_watched_run_is_done(workspace: Workspace, tmp_path: Path) -> None:
    skips = 2 * len(train_forms.STAGES)
    outcomes: dict[str, str] = {}
    assert train_tab.refreshed(workspace, outcomes, "sft-1", "")[1:] == [gr.skip()] * skips
    completion = _version(workspace, tmp_path, "completion", "v1.0")
    outcomes["sft-1"] = f"registered {completion}"
    seen, *updates = train_tab.refreshed(workspace, outcomes, "sft-1", "")
    assert seen == "sft-1" and updates[3]["value"] == completion and len(updates) == skips
    assert train_tab.refreshed(workspace, outcomes, "sft-1", "sft-1") == ["sft-1", *[gr.skip()] * skips]
