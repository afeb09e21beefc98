"""CLI start-up: `llmops --help`, `llmops data list` and `llmops models list` beside `llamafactory-cli --help`.

Each command runs `--repeat` times (default 3) as a fresh process, on a fresh temporary workspace made by
`llmops init`; the table shows the median, fastest and slowest wall-clock seconds. The targets on a 2-core
machine are under 1 s for `--help` and under 2 s for the list commands (heavy libraries such as torch,
transformers and gradio are imported only by the commands that use them).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cli_startup.py [--repeat N]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path) -> float:
    """Seconds `command` takes to exit (successfully)."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def commands(workspace: Path) -> list[tuple[str, list[str]]]:
    llmops, ws = str(BIN / "llmops"), ["--workspace", str(workspace)]
    return [("llmops --help", [llmops, "--help"]),
            ("llmops data list", [llmops, "data", "list", *ws]),
            ("llmops models list", [llmops, "models", "list", *ws]),
            ("llamafactory-cli --help", [str(BIN / "llamafactory-cli"), "--help"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each command (the median is shown).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmops-cli-bench-") as tmp:
        workspace = Path(tmp) / "ws"
        subprocess.run([str(BIN / "llmops"), "init", str(workspace)], check=True, stdout=subprocess.DEVNULL)
        print(f"{'command':<26}{'median s':>10}{'min s':>10}{'max s':>10}")
        for label, command in commands(workspace):
            seconds = [timed(command, Path(tmp)) for _ in range(args.repeat)]
            print(f"{label:<26}{statistics.median(seconds):>10.2f}{min(seconds):>10.2f}{max(seconds):>10.2f}")


if __name__ == "__main__":
    main()
