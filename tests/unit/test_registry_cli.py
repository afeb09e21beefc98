"""`llmops models …` and `llmops train … --config-only` through the Typer app."""

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from llmops.cli import app
from llmops.data.registry import publish_dataset
from llmops.models import registry
from llmops.workspace import Workspace

runner = CliRunner()


def _register(workspace: Workspace, stage: str, parent: str | None) -> str:
    return registry.register_version(workspace, kind="chat", stage=stage, parent=parent, base_model="/b",
                                     path=f"/m/{stage}", merged=stage == "sft", metrics={"final_loss": 1.25}).name


@pytest.mark.store
def test_models_list_show_promote_rollback(workspace: Workspace) -> None:
    v10 = _register(workspace, "sft", None)
    v11 = _register(workspace, "dpo", v10)
    ws = ["-w", str(workspace.root)]
    assert runner.invoke(app, ["models", "promote", v10, *ws]).exit_code == 0
    result = runner.invoke(app, ["models", "promote", v11, *ws])
    assert result.exit_code == 0 and f"{v10} → {v11}" in result.output
    assert registry.aliases(workspace) == {"production": v11, "previous": v10}
    shown = runner.invoke(app, ["models", "show", "production", *ws])
    assert json.loads(shown.output)["parent"] == v10
    assert runner.invoke(app, ["models", "rollback", *ws]).exit_code == 0
    assert registry.resolve(workspace, "production").name == v10
    listing = runner.invoke(app, ["models", "list", *ws], env={"COLUMNS": "200"})
    assert "chat-v1.1" in listing.output and "adapter" in listing.output and "1.25 " in listing.output


def test_train_config_only_writes_a_checked_config(workspace: Workspace) -> None:
    chats = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}]
    publish_dataset(workspace, "shop_sft", workspace.stage_data_dir("sft") / "shop_sft.json", chats, "sft",
                    "messages")
    result = runner.invoke(app, ["train", "sft", "--config-only", "-w", str(workspace.root), "max_steps=7",
                                 "--dataset", "shop_sft"])
    assert result.exit_code == 0, result.output
    (path,) = workspace.configs_dir.glob("sft_config_*.yaml")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert config["max_steps"] == 7 and config["dataset"] == "shop_sft" and config["fp16"] is torch.cuda.is_available()
    assert "accepted by LLaMA-Factory" in result.output.replace("\n", " ")


def test_train_config_only_rejects_unknown_key(workspace: Workspace) -> None:
    publish_dataset(workspace, "domain_corpus", workspace.stage_data_dir("cpt") / "domain_corpus.jsonl",
                    [{"text": "A document."}], "pt", "text")
    args = ["train", "cpt", "--config-only", "--dataset", "domain_corpus", "-w", str(workspace.root), "lora_rnak=4"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "lora_rnak" in str(result.exception)


@pytest.mark.store
def test_models_register_folder_adapter_and_upstream(workspace: Workspace) -> None:
    ws = ["-w", str(workspace.root)]
    assert runner.invoke(app, ["models", "register", "--path", "/models/qwen2-1.5b-instruct", *ws]).exit_code == 0
    result = runner.invoke(app, ["models", "register", "--path", "/adapters/a", "--base-model", "/models/q",
                                 "--stage", "dpo", "--parent", "chat-v1.0", *ws])
    assert result.exit_code == 0, result.output
    upstream = runner.invoke(app, ["models", "register", "--upstream-url", "http://127.0.0.1:8001/v1",
                                   "--version", "v3.0", *ws])
    assert upstream.exit_code == 0, upstream.output
    versions = {v.name: v for v in registry.list_versions(workspace)}
    assert versions["chat-v1.0"].merged and versions["chat-v1.0"].path == "/models/qwen2-1.5b-instruct"
    assert not versions["chat-v1.1"].merged and versions["chat-v1.1"].base_model == "/models/q"
    assert versions["chat-v1.1"].parent == "chat-v1.0"
    assert versions["chat-v3.0"].upstream_url == "http://127.0.0.1:8001/v1"
    missing = runner.invoke(app, ["models", "register", *ws])
    assert missing.exit_code != 0
