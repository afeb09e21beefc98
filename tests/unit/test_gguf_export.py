"""`llmops models export NAME --gguf`: finding the llama.cpp source, the converter commands, staging, the rename into
place and the serving lines, against a stand-in llama.cpp tree whose converters are small scripts (the real ones run
in tests/integration/test_gguf_serving.py)."""

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app as cli
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.train import gguf
from llmops.workspace import Workspace

# The stand-in model converter asks the (shimmed) TextModel for its pre-tokenizer label and writes it as the "GGUF".
MODEL_CONVERTER = """import sys
from pathlib import Path
from conversion.base import TextModel
model = TextModel(); model.dir_model = sys.argv[1]
label = model.get_vocab_base_pre(None)
Path(sys.argv[sys.argv.index("--outfile") + 1]).write_text(f"model {label}")
"""
# The stand-in adapter converter fails on an adapter without adapter_config.json, as the real one does.
ADAPTER_CONVERTER = """import sys
from pathlib import Path
adapter = Path(sys.argv[-1])
if not (adapter / "adapter_config.json").is_file():
    sys.exit(f"no adapter_config.json in {adapter}")
Path(sys.argv[sys.argv.index("--outfile") + 1]).write_text("adapter of " + sys.argv[sys.argv.index("--base") + 1])
"""
TEXT_MODEL = """class TextModel:
    def get_vocab_base_pre(self, tokenizer):
        raise NotImplementedError("BPE pre-tokenizer was not recognized")
"""


def fake_llama_cpp(root: Path) -> Path:
    (root / "conversion").mkdir(parents=True)
    (root / "gguf-py" / "gguf").mkdir(parents=True)
    (root / "gguf-py" / "gguf" / "__init__.py").write_text("")
    (root / "conversion" / "__init__.py").write_text("")
    (root / "conversion" / "base.py").write_text(TEXT_MODEL)
    (root / gguf.MODEL_CONVERTER).write_text(MODEL_CONVERTER)
    (root / gguf.ADAPTER_CONVERTER).write_text(ADAPTER_CONVERTER)
    return root


def model_folder(root: Path, pretokenizers: list[dict[str, object]]) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "Qwen2Tokenizer", "eos_token": "x"}))
    (root / "tokenizer.json").write_text(json.dumps({"pre_tokenizer": {"type": "Sequence",
                                                                       "pretokenizers": pretokenizers}}))
    (root / "model.safetensors").write_bytes(b"weights")
    (root / "checkpoint-5").mkdir()
    return root


def adapter_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text("{}")
    return root


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tree = fake_llama_cpp(tmp_path / "llama.cpp")
    monkeypatch.setenv(gguf.SOURCE_ENV, str(tree))
    monkeypatch.delenv(gguf.SERVER_ENV, raising=False)
    monkeypatch.setenv("LLMOPS_LLAMA_CPP_CACHE", str(tmp_path / "empty-cache"))  # not the cached llama.cpp
    return tree


def test_a_missing_source_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             workspace: Workspace) -> None:
    monkeypatch.delenv(gguf.SOURCE_ENV, raising=False)
    monkeypatch.setenv("LLMOPS_LLAMA_CPP_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(LLMOpsError, match=r"none found; set LLMOPS_LLAMA_CPP \(or the setting train.llama_cpp\)"):
        gguf.llama_cpp_source("")
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b",
                              path=str(model_folder(tmp_path / "m", gguf.HAN_ISOLATED)), merged=True)
    result = CliRunner().invoke(cli, ["models", "export", "chat-v1.0", "--gguf", "-w", str(workspace.root)])
    assert result.exit_code != 0 and isinstance(result.exception, LLMOpsError)
    assert gguf.SOURCE_ENV in str(result.exception)
    assert not gguf.gguf_path(workspace, "chat-v1.0").exists()


def test_an_incomplete_source_names_what_is_missing(source: Path) -> None:
    (source / gguf.ADAPTER_CONVERTER).unlink()
    with pytest.raises(LLMOpsError, match=rf"{source} \(LLMOPS_LLAMA_CPP\): no convert_lora_to_gguf.py"):
        gguf.llama_cpp_source("")
    with pytest.raises(LLMOpsError, match=r"\(train.llama_cpp\): no convert_lora_to_gguf.py"):
        gguf.llama_cpp_source(str(source))


def test_a_model_is_converted_from_a_staged_copy_with_a_generic_tokenizer(source: Path, tmp_path: Path) -> None:
    model = model_folder(tmp_path / "chat", gguf.HAN_ISOLATED)
    target = tmp_path / "out" / "chat.gguf"
    job = gguf.model_job(source, model, target, tmp_path / "work")
    staged = tmp_path / "work" / "chat"
    assert job.command == [sys.executable, str(tmp_path / "work" / "convert.py"), str(source / gguf.MODEL_CONVERTER),
                           str(staged), "--outtype", "f32", "--outfile", str(job.partial)]
    assert job.pythonpath.split(os.pathsep) == [str(source / "gguf-py"), str(source)]
    assert job.partial.parent == target.parent and job.partial.name.startswith(".chat.gguf.partial-")
    assert json.loads((staged / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert (staged / "model.safetensors").resolve() == (model / "model.safetensors").resolve()
    assert not (staged / "checkpoint-5").exists()
    assert json.loads((model / "tokenizer_config.json").read_text())["tokenizer_class"] == "Qwen2Tokenizer"
    lines: list[str] = []
    result = gguf.run_job(job, lines.append)
    assert result == gguf.GGUFResult(target, relabelled=True)
    assert target.read_text() == "model gpt-2" and gguf.RELABELLED in lines
    assert not staged.exists() and list(target.parent.iterdir()) == [target]
    assert job.log.read_text().startswith(f"$ {job.display}\n")


def test_a_failed_conversion_leaves_nothing_and_shows_the_log(source: Path, tmp_path: Path) -> None:
    other = [{"type": "Whitespace"}]  # a pre-tokenizer llama.cpp does not know and llmops does not relabel
    target = tmp_path / "out" / "chat.gguf"
    job = gguf.model_job(source, model_folder(tmp_path / "chat", other), target, tmp_path / "work")
    with pytest.raises(LLMOpsError, match=r"(?s)GGUF conversion to .*chat.gguf failed \(exit 1\).*not recognized"):
        gguf.run_job(job)
    assert list(target.parent.iterdir()) == [] and not job.staging.exists()  # type: ignore[union-attr]
    target.write_text("earlier export")
    with pytest.raises(LLMOpsError, match="already exists"):
        gguf.model_job(source, tmp_path / "chat", target, tmp_path / "work2")


def test_versions_to_jobs(source: Path, tmp_path: Path, workspace: Workspace) -> None:
    chat = model_folder(tmp_path / "chat", gguf.HAN_ISOLATED)
    adapter = adapter_folder(tmp_path / "dpo")
    merged = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b",
                                       path=str(chat), merged=True)
    dpo = registry.register_version(workspace, kind="chat", stage="dpo", parent=merged.name, base_model=str(chat),
                                    path=str(adapter), merged=False)
    remote = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="", path="",
                                       merged=True, upstream_url="http://127.0.0.1:9/v1")
    job = gguf.version_job(workspace, dpo)
    assert job.target == workspace.models_dir / "chat-v1.1.gguf" and job.log.parent.parent == workspace.runs_dir
    assert job.command == [sys.executable, str(source / gguf.ADAPTER_CONVERTER), "--base", str(chat), "--outtype",
                           "f32", "--outfile", str(job.partial), str(adapter)]
    staging = gguf.version_job(workspace, merged, tmp_path / "x.gguf").staging
    assert staging is not None and staging.name == "chat" and staging.parent.parent == workspace.runs_dir
    with pytest.raises(LLMOpsError, match=r"model chat-v2.0: \(no path\) is not a local folder"):
        gguf.version_job(workspace, remote)


def test_the_cli_exports_an_adapter_and_prints_how_to_serve_it(source: Path, tmp_path: Path,
                                                                workspace: Workspace) -> None:
    chat = model_folder(tmp_path / "chat", gguf.HAN_ISOLATED)
    merged = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b",
                                       path=str(chat), merged=True)
    adapter = adapter_folder(tmp_path / "dpo")
    registry.register_version(workspace, kind="chat", stage="dpo", parent=merged.name, base_model=str(chat),
                              path=str(adapter), merged=False)
    result = CliRunner().invoke(cli, ["models", "export", "chat-v1.1", "--gguf", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    exported, parent = gguf.gguf_path(workspace, "chat-v1.1"), gguf.gguf_path(workspace, "chat-v1.0")
    assert exported.read_text() == f"adapter of {chat}"
    lines = [line.strip() for line in result.output.splitlines()]
    assert f"llmops models export chat-v1.0 --gguf --workspace {workspace.root}" in lines  # the parent's GGUF first
    binary = gguf.llama_server_binary() or "llama-server"  # one on PATH is named by its path
    assert (f"{binary} -m {parent} --lora {exported} --jinja --host 127.0.0.1 --port 8081 "
            '--api-key "$LLMOPS_UPSTREAM_API_KEY"') in lines
    (register,) = [line for line in lines if line.startswith("llmops models register")]
    again = CliRunner().invoke(cli, register.split()[1:])  # the printed line registers the upstream version
    assert again.exit_code == 0, again.output
    served = registry.get_version(workspace, "chat-v1.2")
    assert (served.parent, served.stage, served.upstream_url, served.path) == (
        "chat-v1.1", "dpo", "http://127.0.0.1:8081/v1", str(adapter))


def test_export_without_out_or_gguf_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b",
                              path=str(model_folder(tmp_path / "m", [])), merged=True)
    result = CliRunner().invoke(cli, ["models", "export", "chat-v1.0", "-w", str(workspace.root)])
    assert isinstance(result.exception, LLMOpsError) and "--out FOLDER" in str(result.exception)
