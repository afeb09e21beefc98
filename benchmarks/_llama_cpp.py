"""llama.cpp for the peer benchmark: `llama-server` and the HF → GGUF converter, built once and cached.

`LLMOPS_LLAMA_SERVER` names a `llama-server` binary to use as is. Otherwise the llama.cpp source vendored in
the `llama-cpp-python` sdist (pinned below) is downloaded with pip and built with CMake into
`~/.cache/llmops/llama.cpp/<version>/` (a plain CPU build, about 10 minutes on two cores). The converter
(`convert_hf_to_gguf.py`) and its bundled `gguf` package always come from that source.

    .venv/bin/python benchmarks/_llama_cpp.py            # fetch + build, print the llama-server path
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

VERSION = "0.3.36"
CACHE = Path(os.environ.get("LLMOPS_LLAMA_CPP_CACHE", Path.home() / ".cache" / "llmops" / "llama.cpp")) / VERSION
NICE = ["nice", "-n", "19"]
HAN_ISOLATED = [{"type": "Split", "pattern": {"Regex": "\\p{Han}"}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]
# Runs the converter with one change: a BPE pre-tokenizer the converter does not know by its hash is labelled
# `gpt-2` when it is the demo tokenizer's (Han characters isolated, then GPT-2's byte-level split).
CONVERT = """
import json, runpy, sys
from pathlib import Path
from conversion.base import TextModel
sys.argv = sys.argv[1:]
expected = json.loads(sys.argv.pop(1))
known = TextModel.get_vocab_base_pre
def pre(self, tokenizer):
    try:
        return known(self, tokenizer)
    except NotImplementedError:
        tokenizer_json = json.loads((Path(self.dir_model) / "tokenizer.json").read_text(encoding="utf-8"))
        if tokenizer_json["pre_tokenizer"].get("pretokenizers") != expected:
            raise
        return "gpt-2"
TextModel.get_vocab_base_pre = pre
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def source_dir() -> Path:
    """The llama.cpp source tree (`vendor/llama.cpp` of the sdist), downloaded and unpacked once."""
    source = CACHE / "src" / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    if (source / "CMakeLists.txt").is_file():
        return source
    download = CACHE / "sdist"
    download.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python",
                    f"llama-cpp-python=={VERSION}", "-d", str(download)], check=True)
    archive = next(download.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE / "src", filter="data")
    if not (source / "CMakeLists.txt").is_file():
        raise SystemExit(f"{archive} has no vendor/llama.cpp/CMakeLists.txt")
    return source


def server_binary(build: bool = True) -> Path | None:
    """`llama-server`: `$LLMOPS_LLAMA_SERVER`, the cached build, or (when `build`) a fresh CMake build."""
    named = os.environ.get("LLMOPS_LLAMA_SERVER")
    if named:
        if not Path(named).is_file():
            raise SystemExit(f"LLMOPS_LLAMA_SERVER={named} is not a file")
        return Path(named)
    binary = CACHE / "build" / "bin" / "llama-server"
    if binary.is_file() or not build:
        return binary if binary.is_file() else None
    source = source_dir()
    build_dir = CACHE / "build"
    subprocess.run([*NICE, "cmake", "-S", str(source), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_CURL=OFF", "-DGGML_NATIVE=ON", "-DLLAMA_BUILD_SERVER=ON"], check=True)
    subprocess.run([*NICE, "cmake", "--build", str(build_dir), "--target", "llama-server", "-j2"], check=True)
    return binary


def converter() -> tuple[Path, Path]:
    """(`convert_hf_to_gguf.py`, the `gguf-py` folder to put on PYTHONPATH) from the llama.cpp source."""
    source = source_dir()
    return source / "convert_hf_to_gguf.py", source / "gguf-py"


def to_gguf(model_dir: Path, work: Path) -> Path:
    """`model_dir` (a HF model folder) as GGUF f32 in `work`: converted from a copy whose tokenizer_config names
    `PreTrainedTokenizerFast` (the converter loads the tokenizer with transformers' AutoTokenizer)."""
    script, gguf_py = converter()
    copy = work / "hf"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("checkpoint-*", "*.bin", "*.png"))
    config_path = copy / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config_path.write_text(json.dumps({**config, "tokenizer_class": "PreTrainedTokenizerFast"}), encoding="utf-8")
    out = work / "model-f32.gguf"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(gguf_py), str(script.parent)])}
    subprocess.run([*NICE, sys.executable, "-c", CONVERT, str(script), json.dumps(HAN_ISOLATED), str(copy),
                    "--outtype", "f32", "--outfile", str(out)], env=env, check=True, capture_output=True)
    return out


if __name__ == "__main__":
    sys.stdout.write(f"{server_binary()}\n")
