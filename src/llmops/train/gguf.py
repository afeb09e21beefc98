"""GGUF files for llama.cpp's `llama-server` (a CPU serving path): a merged version becomes a GGUF f32 model, a LoRA
version (a DPO or KTO adapter) a GGUF adapter that `llama-server --lora` applies on its parent's GGUF.

The converters are llama.cpp's own, `convert_hf_to_gguf.py` and `convert_lora_to_gguf.py`, run as a subprocess from
a llama.cpp source tree with the tree's bundled `gguf-py` on PYTHONPATH (PyPI's `gguf` lags behind the converter).
The tree is `train.llama_cpp`, else `$LLMOPS_LLAMA_CPP`, else the copy benchmarks/_llama_cpp.py unpacks into the
cache (`$LLMOPS_LLAMA_CPP_CACHE`, default ~/.cache/llmops/llama.cpp). A model is converted from a staging folder (its
JSON files copied, its weights linked) whose tokenizer_config names `PreTrainedTokenizerFast`: the converter loads
the tokenizer with transformers' AutoTokenizer. llama.cpp knows a BPE pre-tokenizer by the hash of what it makes of
a test text and refuses one it does not know, except here the demo tokenizer's (Han characters isolated, then
GPT-2's byte-level split), which is labelled `gpt-2`: llama.cpp then splits Han runs as GPT-2 does, so some Chinese
texts get a token more than in transformers (the result says when this happened). The GGUF is written under a
temporary name beside the target and renamed into place; the converter's command and log stay in the work folder.
"""

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmops.errors import LLMOpsError
from llmops.fileio import write_text_atomic
from llmops.models.registry import ModelVersion
from llmops.workspace import Workspace

SOURCE_ENV = "LLMOPS_LLAMA_CPP"
SERVER_ENV = "LLMOPS_LLAMA_SERVER"
LLAMA_CPP_VERSION = "0.3.36"  # the llama-cpp-python sdist whose vendored llama.cpp the benchmark caches
MODEL_CONVERTER = "convert_hf_to_gguf.py"
ADAPTER_CONVERTER = "convert_lora_to_gguf.py"
HAN_ISOLATED = [{"type": "Split", "pattern": {"Regex": "\\p{Han}"}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]
RELABELLED = "llmops: unknown pre-tokenizer (Han isolated + byte-level) labelled gpt-2"
_COPIED = (".json", ".jinja", ".txt", ".model")  # staged as copies; everything else (the weights) as links
_LOG_TAIL = 20
# Runs the model converter (argv[1]) with one change: the demo tokenizer's pre-tokenizer is labelled `gpt-2`.
_SHIM = '''import json, runpy, sys
from pathlib import Path
from conversion.base import TextModel

EXPECTED = json.loads({expected!r})
known = TextModel.get_vocab_base_pre


def pre(self, tokenizer):
    try:
        return known(self, tokenizer)
    except NotImplementedError:
        tokenizer_json = json.loads((Path(self.dir_model) / "tokenizer.json").read_text(encoding="utf-8"))
        if (tokenizer_json.get("pre_tokenizer") or {{}}).get("pretokenizers") != EXPECTED:
            raise
        print({marker!r}, file=sys.stderr, flush=True)
        return "gpt-2"


TextModel.get_vocab_base_pre = pre
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
'''


@dataclass(frozen=True)
class GGUFJob:
    """One conversion: the converter command, the PYTHONPATH it runs with, where it writes and logs."""

    command: list[str]
    pythonpath: str
    target: Path
    partial: Path
    log: Path
    staging: Path | None = None

    @property
    def display(self) -> str:
        return f"PYTHONPATH={shlex.quote(self.pythonpath)} {shlex.join(self.command)}"


@dataclass(frozen=True)
class GGUFResult:
    path: Path
    relabelled: bool  # the pre-tokenizer was labelled gpt-2 (see the module's docstring)


def llama_cpp_cache() -> Path:
    """Where benchmarks/_llama_cpp.py keeps the llama.cpp sdist, its source and its build."""
    root = os.environ.get("LLMOPS_LLAMA_CPP_CACHE", "").strip()
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "llmops" / "llama.cpp") / LLAMA_CPP_VERSION


def cached_source() -> Path:
    return llama_cpp_cache() / "src" / f"llama_cpp_python-{LLAMA_CPP_VERSION}" / "vendor" / "llama.cpp"


def llama_cpp_source(configured: str) -> Path:
    """The llama.cpp source tree: `configured` (train.llama_cpp), else $LLMOPS_LLAMA_CPP, else the cached copy;
    LLMOpsError when none is there or it lacks a converter or gguf-py."""
    named = configured.strip() or os.environ.get(SOURCE_ENV, "").strip()
    source = Path(named).expanduser() if named else cached_source()
    if not named and not source.is_dir():
        raise LLMOpsError(f"llama.cpp source: none found; set {SOURCE_ENV} (or the setting train.llama_cpp) to a "
                          f"llama.cpp checkout with {MODEL_CONVERTER}, {ADAPTER_CONVERTER} and gguf-py/, or run "
                          "benchmarks/_llama_cpp.py to fetch one")
    what = "train.llama_cpp" if configured.strip() else SOURCE_ENV if named else "the cached llama.cpp source"
    for needed in (MODEL_CONVERTER, ADAPTER_CONVERTER, "gguf-py/gguf/__init__.py"):
        if not (source / needed).is_file():
            raise LLMOpsError(f"{source} ({what}): no {needed}; expected a llama.cpp source tree")
    return source


def llama_server_binary() -> Path | None:
    """`llama-server`: $LLMOPS_LLAMA_SERVER, else the one on PATH, else the benchmark's cached build; None if none."""
    named = os.environ.get(SERVER_ENV, "").strip()
    if named:
        if not Path(named).is_file():
            raise LLMOpsError(f"{SERVER_ENV}={named}: not a file")
        return Path(named)
    found = shutil.which("llama-server")
    cached = llama_cpp_cache() / "build" / "bin" / "llama-server"
    return Path(found) if found else cached if cached.is_file() else None


def llama_server_command(binary: str, model: Path, *, adapter: Path | None = None, port: int = 8081) -> list[str]:
    """`llama-server` serving `model` (with `adapter` applied to every request) on 127.0.0.1, with the GGUF's
    chat template (`--jinja`)."""
    lora = ["--lora", str(adapter)] if adapter is not None else []
    return [binary, "-m", str(model), *lora, "--jinja", "--host", "127.0.0.1", "--port", str(port)]


def _pythonpath(source: Path) -> str:
    return os.pathsep.join([str(source / "gguf-py"), str(source)])


def _partial(target: Path) -> Path:
    if target.exists():
        raise LLMOpsError(f"{target}: already exists; refusing to overwrite it")
    return target.parent / f".{target.name}.partial-{secrets.token_hex(3)}"


def _stage(model_dir: Path, staging: Path) -> None:
    """`model_dir`'s files in `staging`: small ones copied, the weights linked; the tokenizer class generic."""
    staging.mkdir(parents=True)
    for item in sorted(model_dir.iterdir()):
        if not item.is_file():
            continue
        if item.suffix in _COPIED:
            shutil.copy2(item, staging / item.name)
        else:
            (staging / item.name).symlink_to(item.resolve())
    config_path = staging / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        write_text_atomic(config_path, json.dumps({**config, "tokenizer_class": "PreTrainedTokenizerFast"}))


def model_job(source: Path, model_dir: Path, target: Path, work: Path) -> GGUFJob:
    """Converting the HF model folder `model_dir` to a GGUF f32 model at `target`; `work` holds the staging
    folder, the converter shim and the log."""
    partial = _partial(target)
    staging = work / model_dir.name  # the folder name becomes the GGUF's general.name
    _stage(model_dir, staging)
    shim = work / "convert.py"
    write_text_atomic(shim, _SHIM.format(expected=json.dumps(HAN_ISOLATED), marker=RELABELLED))
    command = [sys.executable, str(shim), str(source / MODEL_CONVERTER), str(staging), "--outtype", "f32",
               "--outfile", str(partial)]
    return GGUFJob(command, _pythonpath(source), target, partial, work / "convert.log", staging)


def adapter_job(source: Path, adapter_dir: Path, base_dir: Path, target: Path, work: Path) -> GGUFJob:
    """Converting the PEFT LoRA adapter `adapter_dir` (on the HF model `base_dir`) to a GGUF adapter at `target`."""
    partial = _partial(target)
    work.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(source / ADAPTER_CONVERTER), "--base", str(base_dir), "--outtype", "f32",
               "--outfile", str(partial), str(adapter_dir)]
    return GGUFJob(command, _pythonpath(source), target, partial, work / "convert.log")


def _local_folder(path: str, what: str) -> Path:
    if not path or not Path(path).is_dir():
        raise LLMOpsError(f"{what}: {path or '(no path)'} is not a local folder; only weights on this machine can be "
                          "converted (a version served by an upstream has none here)")
    return Path(path)


def version_job(workspace: Workspace, version: ModelVersion, target: Path | None = None) -> GGUFJob:
    """Converting `version`: a merged one as a model, an adapter as a GGUF adapter; to `models/<name>.gguf`
    unless `target` is given. Its log goes to `runs/gguf-…/`."""
    source = llama_cpp_source(workspace.settings.train.llama_cpp)
    weights = _local_folder(version.path, f"model {version.name}")
    out = target if target is not None else gguf_path(workspace, version.name)
    work = workspace.runs_dir / f"gguf-{version.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    if version.merged:
        return model_job(source, weights, out, work)
    base = _local_folder(version.base_model, f"model {version.name}: its base model")
    return adapter_job(source, weights, base, out, work)


def gguf_path(workspace: Workspace, name: str) -> Path:
    """Where `llmops models export NAME --gguf` writes by default."""
    return workspace.models_dir / f"{name}.gguf"


def run_job(job: GGUFJob, on_line: Callable[[str], None] | None = None) -> GGUFResult:
    """Run the converter (each line of its output to the log and to `on_line`); the GGUF renamed into place."""
    job.target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": job.pythonpath}
    done = False
    process: subprocess.Popen[str] | None = None
    try:
        with job.log.open("w", encoding="utf-8") as log:
            log.write(f"$ {job.display}\n")
            log.flush()
            process = subprocess.Popen(job.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                       text=True, errors="replace")
            for line in process.stdout or ():
                log.write(line)
                if on_line is not None and line.strip():
                    on_line(line.strip())
            code = process.wait()
        if code != 0 or not job.partial.is_file():
            tail = "\n".join(job.log.read_text(encoding="utf-8").splitlines()[-_LOG_TAIL:])
            raise LLMOpsError(f"GGUF conversion to {job.target} failed (exit {code}); log {job.log}:\n{tail}")
        os.replace(job.partial, job.target)
        done = True
    finally:
        if process is not None and process.poll() is None:  # interrupted: the converter goes too
            process.kill()
            process.wait()
        if not done:
            job.partial.unlink(missing_ok=True)
        if job.staging is not None:
            shutil.rmtree(job.staging, ignore_errors=True)
    return GGUFResult(job.target, RELABELLED in job.log.read_text(encoding="utf-8"))
