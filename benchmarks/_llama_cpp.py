"""llama.cpp for the peer benchmark: `llama-server` and the HF → GGUF converter, built once and cached.

`LLMOPS_LLAMA_SERVER` names a `llama-server` binary to use as is. Otherwise the llama.cpp source vendored in
the `llama-cpp-python` sdist (pinned below) is downloaded with pip and built with CMake into
`~/.cache/llmops/llama.cpp/<version>/` (a plain CPU build, about 10 minutes on two cores). The model is converted
to GGUF as `llmops models export --gguf` converts (llmops.train.gguf), with that source's `convert_hf_to_gguf.py`
and its bundled `gguf` package.

    .venv/bin/python benchmarks/_llama_cpp.py            # fetch + build, print the llama-server path
"""

import subprocess
import sys
import tarfile
from pathlib import Path

from llmops.train.gguf import LLAMA_CPP_VERSION, cached_source, llama_cpp_cache, llama_server_binary, model_job, run_job

VERSION = LLAMA_CPP_VERSION
CACHE = llama_cpp_cache()
NICE = ["nice", "-n", "19"]


def source_dir() -> Path:
    """The llama.cpp source tree (`vendor/llama.cpp` of the sdist), downloaded and unpacked once."""
    source = cached_source()
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
    """`llama-server`: `$LLMOPS_LLAMA_SERVER`, on PATH or the cached build, or (when `build`) a fresh CMake build."""
    found = llama_server_binary()
    if found is not None or not build:
        return found
    binary = CACHE / "build" / "bin" / "llama-server"
    source = source_dir()
    build_dir = CACHE / "build"
    subprocess.run([*NICE, "cmake", "-S", str(source), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_CURL=OFF", "-DGGML_NATIVE=ON", "-DLLAMA_BUILD_SERVER=ON"], check=True)
    subprocess.run([*NICE, "cmake", "--build", str(build_dir), "--target", "llama-server", "-j2"], check=True)
    return binary


def to_gguf(model_dir: Path, work: Path) -> Path:
    """`model_dir` (a HF model folder) as GGUF f32 in `work`, converted as `llmops models export --gguf` does."""
    return run_job(model_job(source_dir(), model_dir, work / "model-f32.gguf", work / "convert")).path


if __name__ == "__main__":
    sys.stdout.write(f"{server_binary()}\n")
