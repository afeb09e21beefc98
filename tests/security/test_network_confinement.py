"""Security (issue 12, item 3): nothing from the network names code or a path.

Training from the UI takes registered datasets and versions by name plus whitelisted hyperparameters; only
configs in configs/llmops/ start; uploads land in documents/uploads/; corpus paths stay in documents/; the
Self-Instruct endpoint is the settings'. The library functions are tested directly and through the UI
handlers the tabs bind.
"""

import inspect
import json
import re
import socket
import stat
from pathlib import Path

import gradio as gr
import pytest
import yaml
from gradio.utils import get_upload_folder

from llmops import db
from llmops.data.preferences import PreferenceCollector, export_preferences
from llmops.data.registry import list_datasets, publish_dataset
from llmops.data.self_instruct_llm import settings_endpoint
from llmops.data.uploads import network_documents, safe_name, save_uploads, uploads_dir
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.train.configs import (
    NETWORK_HYPERPARAMETERS,
    check_network_overrides,
    config_yaml,
    create_sft_config,
    validate_config,
    write_config,
)
from llmops.train.network import BASE_MODEL, model_choices, start_network_config, write_network_config
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.ui import data_tab, instructions_panel, train_forms, train_tab
from llmops.workspace import Workspace

REFUSED_KEYS = ["trust_remote_code", "output_dir", "deepspeed", "model_name_or_path", "adapter_name_or_path",
                "dataset_dir", "ref_model", "tokenized_path", "cache_dir", "export_dir", "no_such_key"]


def _sft_dataset(workspace: Workspace) -> str:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    path = workspace.stage_data_dir("sft") / "sft_small.json"
    return publish_dataset(workspace, "sft_small", path, [{"messages": messages}], "sft", "messages").name


def _remote_code_folder(workspace: Workspace) -> Path:
    """What the RCE probe left on the server: a model folder whose config.json loads an uploaded module."""
    folder = uploads_dir(workspace) / "evil"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "evil", "auto_map": {
        "AutoModelForCausalLM": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"}}))
    (folder / "modeling_evil.py").write_text("import os\nos.system('touch /tmp/pwned')\n")
    return folder


def _config_file(folder: Path, config: dict[str, object], name: str = "probe.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(config_yaml(config), encoding="utf-8")
    return path


def test_the_remote_code_path_is_refused_at_every_step(workspace: Workspace, tmp_path: Path) -> None:
    dataset = _sft_dataset(workspace)
    folder = _remote_code_folder(workspace)
    source = tmp_path / "upload"
    source.mkdir()
    for name in ("modeling_evil.py", "config.json"):
        (source / name).write_text("x")
        with pytest.raises(LLMOpsError, match=re.escape(name)):
            save_uploads(workspace, [source / name])
    with pytest.raises(LLMOpsError, match="trust_remote_code"):
        check_network_overrides("sft", ["trust_remote_code=true"])
    assert str(folder) not in {value for _, value in model_choices(workspace)}
    for model in (str(folder), "documents/uploads/evil", "../evil"):
        with pytest.raises(LLMOpsError, match="not the base model nor a registered version"):
            write_network_config(workspace, "sft", dataset, model, {})
    with gr.Blocks():
        form = train_forms.render_form(workspace, "SFT")
    assert [value for _, value in form.model.choices] == [BASE_MODEL]
    values = [*(widget.value for widget in form.inputs[:-1]), "trust_remote_code=true"]
    with pytest.raises(LLMOpsError, match="trust_remote_code: cannot be set from the UI or API"):
        train_forms.generate(workspace, form, tuple(values))
    evil = dict(create_sft_config(model_name=str(folder), dataset=dataset), trust_remote_code=True)
    trainer = LLaMAFactoryTrainer(workspace)
    for folder_of_config, refusal in ((tmp_path / "elsewhere", "must stay inside"),
                                      (workspace.configs_dir, "trust_remote_code: refused")):
        with pytest.raises(LLMOpsError, match=refusal):
            start_network_config(trainer, str(_config_file(folder_of_config, evil)))
    assert trainer.list_runs() == [] and not any(workspace.runs_dir.iterdir())


@pytest.mark.parametrize("key", REFUSED_KEYS)
def test_paths_code_and_unknown_keys_are_refused_by_name(workspace: Workspace, key: str) -> None:
    dataset = _sft_dataset(workspace)
    assert key not in NETWORK_HYPERPARAMETERS
    with pytest.raises(LLMOpsError, match=rf"^{re.escape(key)}: cannot be set from the UI or API"):
        check_network_overrides("sft", [f"{key}=/tmp/x"])
    with pytest.raises(LLMOpsError, match=re.escape(key)):
        write_network_config(workspace, "sft", dataset, BASE_MODEL, {key: "x"})
    assert not any(workspace.configs_dir.iterdir())


@pytest.mark.parametrize("override", ["learning_rate=nan", "learning_rate=inf", "num_train_epochs=1.5",
                                      "max_steps=true", "lora_rank=0", "lora_target=../x", "lora_target=a b",
                                      "pref_loss=evil", "pref_beta=0.1", "max_steps="])
def test_bad_values_and_keys_of_other_stages_are_refused(override: str) -> None:
    with pytest.raises(LLMOpsError, match=re.escape(override.split("=")[0])):
        check_network_overrides("sft", [override])


def test_whitelisted_hyperparameters_pass_with_their_types() -> None:
    checked = check_network_overrides("dpo", ["max_steps=5", "learning_rate=1e-4", "lora_target=q_proj,v_proj",
                                              "pref_loss=orpo", "pref_ftx=1"])
    assert checked == {"max_steps": 5, "learning_rate": 1e-4, "lora_target": "q_proj,v_proj", "pref_loss": "orpo",
                       "pref_ftx": 1.0}
    assert isinstance(checked["max_steps"], int) and isinstance(checked["pref_ftx"], float)


def test_the_cli_keeps_accepting_any_key(workspace: Workspace) -> None:
    written = write_config(workspace, create_sft_config(), ["deepspeed=ds.json", "trust_remote_code=true"], cuda=False)
    assert written.config["deepspeed"] == "ds.json" and written.config["trust_remote_code"] is True


def test_a_network_config_is_confined_and_accepted_by_llamafactory(workspace: Workspace) -> None:
    dataset = _sft_dataset(workspace)
    written = write_network_config(workspace, "sft", dataset, BASE_MODEL, {"learning_rate": 1e-4, "max_steps": None},
                                   ["max_steps=3"], cuda=False)
    config = written.config
    assert written.path.parent == workspace.configs_dir
    assert Path(config["output_dir"]).parent == (workspace.checkpoints_dir / "sft").resolve()
    assert config["trust_remote_code"] is False
    assert yaml.safe_load(written.path.read_text())["trust_remote_code"] is False
    assert config["dataset_dir"] == str(workspace.data_dir) and config["template"] == workspace.settings.train.template
    assert config["max_steps"] == 3 and config["learning_rate"] == pytest.approx(1e-4)
    validate_config(config, str(written.path))
    with pytest.raises(LLMOpsError, match="not a registered sft dataset"):
        write_network_config(workspace, "sft", "../../etc/passwd", BASE_MODEL, {})


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/shadow", "../../llmops.yaml", "../llmops/../../x.yaml", ""])
def test_start_refuses_files_outside_the_configs_folder(workspace: Workspace, path: str) -> None:
    trainer = LLaMAFactoryTrainer(workspace)
    with pytest.raises(LLMOpsError):
        start_network_config(trainer, path)
    assert not any(workspace.runs_dir.iterdir())


def test_start_refuses_links_and_configs_that_write_or_read_elsewhere(workspace: Workspace, tmp_path: Path) -> None:
    trainer = LLaMAFactoryTrainer(workspace)
    (workspace.configs_dir / "passwd.yaml").symlink_to("/etc/passwd")
    (workspace.configs_dir / "notes.txt").write_text("stage: sft\n")
    for name, pattern in (("passwd.yaml", "must stay inside"), ("notes.txt", "not a config file")):
        with pytest.raises(LLMOpsError, match=pattern):
            start_network_config(trainer, str(workspace.configs_dir / name))
    placed = write_config(workspace, create_sft_config(), cuda=False).config
    for key, value in (("output_dir", "/tmp/anywhere"), ("output_dir", "../../.."), ("output_dir", ""),
                       ("dataset_dir", str(tmp_path))):
        path = _config_file(workspace.configs_dir, dict(placed, **{key: value}))
        with pytest.raises(LLMOpsError, match=f"{re.escape(str(path))}: {key}"):
            start_network_config(trainer, path.name)
    assert not any(workspace.runs_dir.iterdir())


def test_a_started_run_shows_its_own_log(workspace: Workspace, tmp_path: Path) -> None:
    fake = tmp_path / "fake-llamafactory-cli"
    fake.write_text("#!/bin/sh\necho \"fake trainer: $*\"\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    ws = Workspace(workspace.root, (f"train.llamafactory_cli={fake}",))
    written = write_network_config(ws, "sft", _sft_dataset(ws), BASE_MODEL, {}, cuda=False)
    trainer = LLaMAFactoryTrainer(ws)
    run_id = start_network_config(trainer, written.path.name)
    status = trainer.wait(run_id, poll_s=0.1)
    own_log = Path(status.run_dir) / "train.log"
    assert Path(status.run_dir).parent == ws.runs_dir and status.status == "failed"
    assert f"fake trainer: train {written.path}" in status.error and own_log.read_text().strip() in status.error
    shown, log, _ = train_tab.watch(trainer, run_id)
    assert "**failed**" in shown and log == own_log.read_text().strip()
    with ws.engine.begin() as conn:
        conn.execute(db.runs.update().where(db.runs.c.id == run_id).values(run_dir=str(tmp_path)))
    shown, log, _ = train_tab.watch(trainer, run_id)
    assert shown.startswith("❌") and "must stay inside" in shown and log == ""


@pytest.fixture
def gradio_uploads(tmp_path: Path) -> Path:
    """A folder inside Gradio's upload folder, where the files of an upload event are."""
    folder = Path(get_upload_folder()) / tmp_path.name
    folder.mkdir(parents=True)
    return folder


def test_uploads_land_in_documents_uploads_with_safe_names(workspace: Workspace, gradio_uploads: Path) -> None:
    given = []
    for name in ("faq.md", "Händler notes (v2).TXT", ".hidden.jsonl"):
        given.append(gradio_uploads / name)
        given[-1].write_text(f"text of {name}\n")
    text, status = data_tab.upload(workspace, [str(p) for p in given], "preset/faq_en.md")
    assert text.splitlines() == ["preset/faq_en.md", "uploads/faq.md", "uploads/H_ndler_notes_v2.txt",
                                 "uploads/hidden.jsonl"]
    assert status.startswith("uploaded 3 documents")
    assert (uploads_dir(workspace) / "faq.md").read_text() == "text of faq.md\n"
    again, _ = data_tab.upload(workspace, [str(given[0])], "")
    assert again == "uploads/faq_2.md"
    assert safe_name("../../etc/x.md") == "x.md" and safe_name("...pdf") == "document.pdf"


def test_an_upload_of_code_is_refused_and_nothing_is_copied(workspace: Workspace, gradio_uploads: Path,
                                                            tmp_path: Path) -> None:
    good, bad = gradio_uploads / "ok.md", gradio_uploads / "evil.py"
    good.write_text("fine")
    bad.write_text("import os")
    text, status = data_tab.upload(workspace, [str(good), str(bad)], "kept")
    assert text == "kept" and status.startswith("❌ evil.py: not an allowed document type")
    assert not uploads_dir(workspace).exists()
    link = tmp_path / "link.md"
    link.symlink_to("/etc/passwd")
    with pytest.raises(LLMOpsError, match=r"link\.md: not a regular file"):
        save_uploads(workspace, [link])


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("the secret")
    return folder


@pytest.mark.parametrize("entry", ["/etc", "/etc/hostname", "../llmops.yaml", "..", "preset/../../data", "{out}"])
def test_corpus_paths_outside_documents_are_refused(workspace: Workspace, outside: Path, entry: str) -> None:
    entry = entry.format(out=outside)
    with pytest.raises(LLMOpsError, match="must stay inside"):
        network_documents(workspace, [entry])
    processed, report, _ = data_tab.process(workspace, entry, 64, 0, 0.8)
    assert processed is None and report.startswith("❌")
    assert list_datasets(workspace) == []


def test_symlinks_leaving_documents_are_refused(workspace: Workspace, outside: Path) -> None:
    (workspace.documents_dir / "notes.txt").write_text("our notes")
    assert network_documents(workspace, ["notes.txt"]) == [(workspace.documents_dir / "notes.txt").resolve()]
    (workspace.documents_dir / "linked.txt").symlink_to(outside / "secret.txt")
    (workspace.documents_dir / "linked_dir").symlink_to(outside, target_is_directory=True)
    for entry in ("linked.txt", "linked_dir", "."):
        with pytest.raises(LLMOpsError, match="must stay inside"):
            network_documents(workspace, [entry])
    processed, report, chunks = data_tab.process(workspace, "linked.txt", 64, 0, 0.8)
    assert processed is None and report.startswith("❌") and "the secret" not in report + chunks.to_string()


def test_the_self_instruct_endpoint_is_the_settings(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(inspect.signature(instructions_panel.generate).parameters) == ["workspace", "count", "mode"]
    with gr.Blocks() as blocks:
        instructions_panel.render(workspace)
    labels = [getattr(block, "label", "") or "" for block in blocks.blocks.values()]
    assert not [label for label in labels if "url" in label.lower() or "api_key" in label.lower()]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    monkeypatch.setenv("LLMOPS_TEST_KEY", "sk-test")
    ws = Workspace(workspace.root, (f"data.llm_base_url={url}", "data.llm_model=tiny", "data.llm_api_key_env="
                                    "LLMOPS_TEST_KEY"))
    endpoint = settings_endpoint(ws.settings.data)
    assert (endpoint.base_url, endpoint.model, endpoint.api_key) == (url, "tiny", "sk-test")
    assert settings_endpoint(ws.settings.data, base_url="http://cli/v1").base_url == "http://cli/v1"
    assert f"`tiny` at `{url}`" in instructions_panel.endpoint_text(ws) and "sk-test" not in (
        instructions_panel.endpoint_text(ws))
    generated, table, status = instructions_panel.generate(ws, 3, "llm")
    assert generated is None and table.empty and status.startswith(f"❌ Self-Instruct endpoint {url}")
    assert instructions_panel.generate(ws, 3, "http://evil/v1")[2].startswith("❌ mode")


def test_dpo_choices_are_registered_preference_datasets(workspace: Workspace, tmp_path: Path) -> None:
    PreferenceCollector(workspace).collect_preference("q", "good", "bad", "A")
    export_preferences(workspace)
    adapter = registry.register_version(workspace, kind="chat", stage="dpo", parent=None, base_model="b",
                                        path=str(tmp_path / "adapter"), merged=False)
    with gr.Blocks():
        form = train_forms.render_form(workspace, "DPO")
    names = [value for _, value in form.dataset.choices]
    trl = [d.name for d in list_datasets(workspace) if d.format == "trl"]
    assert "prefs" in names and form.dataset.value == names[0] and trl and not set(trl) & set(names)
    assert adapter.name not in [value for _, value in form.model.choices]
