"""One stage-config builder on every path: the UI, the CLI and the loop write the same YAML for the same stage
and settings, and a config LLaMA-Factory's parser rejects never starts a run."""

import re
import stat
from pathlib import Path

import gradio as gr
import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.data.eval_sets import publish_eval_set
from llmops.data.preferences import PreferenceCollector
from llmops.data.registry import publish_dataset
from llmops.errors import LLMOpsError
from llmops.loop import flywheel
from llmops.models import registry, rollouts
from llmops.train.network import BASE_MODEL
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.ui import train_forms
from llmops.workspace import Workspace, open_workspace

# Settings other than the defaults, so that each path has to read them.
SETTINGS = ["train.template=chatml", "train.cpt.cutoff_len=256", "train.cpt.warmup_ratio=0.1",
            "train.sft.learning_rate=1e-4", "train.sft.finetuning_type=full", "train.dpo.pref_beta=0.3",
            "train.dpo.lora_target=q_proj,v_proj", "train.dpo.seed=7", "loop.min_samples=5"]
STAGES = {"CPT": ("pt", "cpt"), "SFT": ("sft", "sft"), "DPO": ("dpo", "dpo")}


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-llamafactory-cli"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _prepared(workspace: Workspace, tmp_path: Path, cli: Path, extra: tuple[str, ...] = ()) -> Workspace:
    """A workspace with a base folder, a production chat model, datasets of every stage, an eval set and 5 votes."""
    base, chat = tmp_path / "base", tmp_path / "chat"
    base.mkdir()
    chat.mkdir()
    ws = open_workspace(workspace.root, [*SETTINGS, f"train.base_model={base}", f"train.llamafactory_cli={cli}",
                                         *extra])
    publish_dataset(ws, "corpus", ws.stage_data_dir("pt") / "corpus.jsonl", [{"text": "some text"}], "pt", "text")
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    publish_dataset(ws, "sft_small", ws.stage_data_dir("sft") / "sft.json", [{"messages": messages}], "sft",
                    "messages")
    registry.register_version(ws, kind="chat", stage="sft", parent=None, base_model=str(base), path=str(chat),
                              merged=True)
    rollouts.promote(ws, "chat-v1.0", by="cli")
    publish_eval_set(ws, [{"prompt": "held out?", "reference": "yes"}], "prompts")
    collector = PreferenceCollector(ws)
    for i in range(5):
        collector.collect_preference(f"q{i}", f"good {i}", f"bad {i}", "A")
    return ws


def _yaml(path: Path | str) -> str:
    """A config file's text with its output folder taken out (each path names its own)."""
    return re.sub(r"(?m)^output_dir: .*$", "output_dir: <out>", Path(path).read_text(encoding="utf-8"))


def _output_dir(path: Path | str) -> Path:
    found = re.search(r"(?m)^output_dir: (.*)$", Path(path).read_text(encoding="utf-8"))
    assert found is not None
    return Path(found.group(1))


def _from_ui(ws: Workspace, stage: str, dataset: str, model: str) -> Path:
    """The Generate button of the stage's form, every field as rendered (what the browser sends)."""
    with gr.Blocks():
        form = train_forms.render_form(ws, stage)
    fields = tuple(widget.preprocess(widget.value) for widget in form.fields)
    path, _, _ = train_forms.generate(ws, form, (dataset, model, *fields, ""))
    return Path(path)


def _from_cli(ws: Workspace, stage: str, *args: str) -> Path:
    before = set(ws.configs_dir.iterdir())
    settings = [part for override in ws.overrides for part in ("--set", override)]
    result = CliRunner().invoke(app, ["train", stage, "--config-only", "-w", str(ws.root), *settings, *args])
    assert result.exit_code == 0, result.output
    (path,) = set(ws.configs_dir.iterdir()) - before
    return path


def test_ui_cli_and_loop_write_the_same_yaml(workspace: Workspace, tmp_path: Path) -> None:
    ws = _prepared(workspace, tmp_path, _script(tmp_path, "echo 'fake trainer fails'; exit 1"))
    with pytest.raises(LLMOpsError, match=r"dpo run .* failed"):
        flywheel.tick(ws)
    (loop_run,) = LLaMAFactoryTrainer(ws).list_runs()
    prefs = Path(loop_run.config_path).read_text(encoding="utf-8").split("dataset: ", 1)[1].split("\n", 1)[0]
    written = {
        "CPT": [_from_ui(ws, "CPT", "corpus", BASE_MODEL), _from_cli(ws, "cpt", "--dataset", "corpus")],
        "SFT": [_from_ui(ws, "SFT", "sft_small", BASE_MODEL),
                _from_cli(ws, "sft", "--dataset", "sft_small", "--from-base")],
        "DPO": [_from_ui(ws, "DPO", prefs, "chat-v1.0"),
                _from_cli(ws, "dpo", "--dataset", prefs, "--parent", "production"), Path(loop_run.config_path)],
    }
    for stage, paths in written.items():
        texts = {_yaml(path) for path in paths}
        assert len(texts) == 1, stage
        assert {_output_dir(path).parent for path in paths} == {(ws.checkpoints_dir / STAGES[stage][1]).resolve()}
    cpt, sft, dpo = (written[stage][0].read_text(encoding="utf-8") for stage in STAGES)
    assert "template: default" in cpt and "cutoff_len: 256" in cpt and "warmup_ratio: 0.1" in cpt
    assert "template: chatml" in sft and "finetuning_type: full" in sft and "lora_rank" not in sft
    assert "learning_rate: 0.0001" in sft and "trust_remote_code: false" in sft
    assert "pref_beta: 0.3" in dpo and "lora_target: q_proj,v_proj" in dpo and "seed: 7" in dpo


def test_a_typo_in_the_dpo_overrides_stops_the_tick_before_any_subprocess(workspace: Workspace,
                                                                          tmp_path: Path) -> None:
    marker = tmp_path / "trainer-ran"
    ws = _prepared(workspace, tmp_path, _script(tmp_path, f"touch {marker}"), ("loop.dpo_overrides=[pref_btea=0.2]",))
    with pytest.raises(LLMOpsError, match=r"dpo config: rejected by LLaMA-Factory: .*'pref_btea'"):
        flywheel.tick(ws)
    assert LLaMAFactoryTrainer(ws).list_runs() == [] and not any(ws.runs_dir.iterdir())
    assert not marker.exists() and not any(ws.configs_dir.iterdir())
    assert [v.name for v in registry.list_versions(ws)] == ["chat-v1.0"]
    bad_type = open_workspace(ws.root, [*ws.overrides, "loop.dpo_overrides=[pref_beta=high]"])
    with pytest.raises(LLMOpsError, match="override: pref_beta: "):
        flywheel.tick(bad_type)
    assert not marker.exists() and LLaMAFactoryTrainer(ws).list_runs() == []
