"""llama.cpp for the peer benchmark: `llama-server` and the HF → GGUF converter, built once and cached.

`LLMOPS_LLAMA_SERVER` names a `llama-server` binary to use as is. Otherwise the llama.cpp source vendored in
the `llama-cpp-python` sdist (pinned below) is downloaded with pip and built with CMake into
`~/.cache/llmops/llama.cpp/<version>/` (a plain CPU build, about 10 minutes on two cores). The converter
(`convert_hf_to_gguf.py`) and its bundled `gguf` package always come from that source.

    .venv/bin/python benchmarks/_llama_cpp.py            # fetch + build, print the llama-server path
"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

VERSION = "0.3.36"
CACHE = Path(os.environ.get("LLMOPS_LLAMA_CPP_CACHE", Path.home() / ".cache" / "llmops" / "llama.cpp")) / VERSION
NICE = ["nice", "-n", "19"]


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


if __name__ == "__main__":
    sys.stdout.write(f"{server_binary()}\n")
