"""Run every benchmark in benchmarks/ and write benchmarks/RESULTS.md (what `make bench` runs).

Each script runs as its own subprocess (`OMP_NUM_THREADS=1`) and prints its side-by-side table, which is
shown live and kept. A script whose source offers `--json` is asked for its figures as JSON; for the others
the printed output is parsed: table rows (`label  number  number …`), rich box tables and `name value`
pairs. RESULTS.md gets the machine (CPU model, cores, memory), the versions (Python, torch, transformers,
LLaMA-Factory, the llmops git commit), the date, and per benchmark its command, exit status, wall time,
output and figures. It is written atomically, so an interrupted run leaves the previous RESULTS.md as it was.
A benchmark that needs a peer this machine lacks (serve_peers: llama.cpp's `llama-server`) is skipped, with why.

    .venv/bin/python benchmarks/run_all.py [--only corpus_throughput --only rouge_filter] [--timeout SECONDS]
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from llmops.fileio import write_text_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?%?"
FILLERS = frozenset({"a", "and", "at", "by", "for", "from", "in", "of", "on", "or", "run", "the", "to", "with"})
PAIR = re.compile(rf"([A-Za-z][\w/-]*)[ =]({NUMBER})(?![\w.])")
DEFAULT_TIMEOUT = 1800.0
TIMEOUTS = {"feedback_objectives": 3600.0}  # seconds, for the benchmarks that train several models
ROW = re.compile(rf"^\s*(?P<label>[^\d\s|][^|]*?)\s{{2,}}(?P<values>{NUMBER}(?:\s+{NUMBER})*)\s*[*x]?\s*$")


@dataclass
class Result:
    name: str
    command: list[str]
    returncode: int
    seconds: float
    output: str
    figures: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""  # why it did not run ('' when it ran)


def benchmark_scripts(only: list[str]) -> list[Path]:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))
    if only:
        unknown = sorted(set(only) - {p.stem for p in scripts})
        if unknown:
            raise SystemExit(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(p.stem for p in scripts)})")
        scripts = [p for p in scripts if p.stem in only]
    return scripts


def _peer_missing() -> str:
    """Why serve_peers cannot run here: '' when `llama-server` is set or built (benchmarks/_llama_cpp.py)."""
    from _llama_cpp import server_binary  # benchmarks/ is this script's folder, so on sys.path
    from llmops.errors import LLMOpsError

    try:
        found = server_binary(build=False)
    except (SystemExit, LLMOpsError) as exc:
        return str(exc)
    return "" if found else "no llama-server: set LLMOPS_LLAMA_SERVER or build it with benchmarks/_llama_cpp.py"


PRECONDITIONS = {"serve_peers": _peer_missing}


def _number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%×x*"))


def _box_table(lines: list[str]) -> dict[str, list[Any]]:
    """A rich box table: header cells from the `┃` line, rows from the `│` lines (numbers parsed)."""
    header = next((line for line in lines if "┃" in line), "")
    rows = []
    for line in (line for line in lines if line.count("│") >= 2):
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        rows.append([_number(c) if re.fullmatch(NUMBER + "[×x*]?", c) else c for c in cells])
    return {"columns": [cell.strip() for cell in header.strip().strip("┃").split("┃")] if header else [],
            "rows": rows}


def parse_output(output: str) -> dict[str, Any]:
    """Figures of a script without `--json`: `label  1,234  5.6` table rows, rich box tables, and the
    `name=value` / `name value` pairs of the other lines (the last of a name wins)."""
    lines = [line for line in output.splitlines() if "\r" not in line and "%|" not in line]
    rows: dict[str, list[float]] = {}
    pairs: dict[str, float] = {}
    for line in lines:
        match = ROW.match(line)
        if match:
            rows[match["label"].strip()] = [_number(v) for v in match["values"].split()]
        elif "│" not in line and "┃" not in line:
            pairs.update((key, _number(value)) for key, value in PAIR.findall(line) if key.lower() not in FILLERS)
    figures: dict[str, Any] = {"table": rows, "box": _box_table(lines), "values": pairs}
    return {key: value for key, value in figures.items() if value and value != {"columns": [], "rows": []}}


def run_one(script: Path, timeout: float) -> Result:
    """Run `script`, echoing its output live; figures from its `--json` file or its parsed table."""
    wants_json = "--json" in script.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="llmops-bench-") as tmp:
        json_path = Path(tmp) / "figures.json"
        command = [sys.executable, str(script.relative_to(ROOT))] + (["--json", str(json_path)] if wants_json else [])
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace")
        lines = _follow(process, timeout)
        seconds = time.perf_counter() - start
        output = "".join(lines)
        figures = json.loads(json_path.read_text(encoding="utf-8")) if json_path.is_file() else {}
    shown = [os.path.relpath(sys.executable, ROOT), command[1]] + (["--json", "FILE"] if wants_json else [])
    return Result(script.stem, shown, process.returncode, seconds, output, figures or parse_output(output))


def _follow(process: "subprocess.Popen[str]", timeout: float) -> list[str]:
    """The process's output lines, echoed as they come; the process is killed after `timeout` seconds."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    lines = []
    try:
        for line in process.stdout or []:
            sys.stdout.write(line)
            lines.append(line)
    finally:
        timer.cancel()
    if process.wait() < 0:
        lines.append(f"\n[run_all] killed after {timeout:.0f} s (or by a signal)\n")
    return lines


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit} (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else commit


def environment() -> dict[str, str]:
    memory = psutil.virtual_memory().total / 2**30
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {psutil.cpu_count(logical=True)} logical cores "
                   f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable), "
                   f"{memory:.1f} GiB memory, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "llamafactory": _version("llamafactory"),
        "llmops": f"{_version('llmops')}, git {_git_commit()}",
    }


def render(env: dict[str, str], results: list[Result]) -> str:
    parts = ["# Benchmark results", "", "Written by `make bench` (`python benchmarks/run_all.py`); each section is",
             "one script's own side-by-side table. Re-run one with the command shown.", "",
             "| | |", "|---|---|", *[f"| {key} | {value} |" for key, value in env.items()], "",
             "| benchmark | status | wall s |", "|---|---|---|",
             *[f"| {r.name} | {_status(r)} | {r.seconds:.0f} |" for r in results], ""]
    for r in results:
        parts += [f"## {r.name}", "", f"`OMP_NUM_THREADS=1 {' '.join(r.command)}` — exit {r.returncode}, "
                  f"{r.seconds:.0f} s", "", "```text", _tail(r.output), "```", "", "Figures:", "", "```json",
                  json.dumps(r.figures, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(parts)


def _status(r: Result) -> str:
    if r.skipped:
        return f"skipped: {r.skipped}"
    return "ok" if r.returncode == 0 else f"failed ({r.returncode})"


def _tail(output: str, lines: int = 60) -> str:
    kept = [line for line in output.splitlines() if "\r" not in line]
    return "\n".join(kept[-lines:]).replace("```", "'''")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="Run only this benchmark (repeatable).")
    parser.add_argument("--timeout", type=float, help=f"Seconds one benchmark may run (default {DEFAULT_TIMEOUT:.0f}; "
                        f"{', '.join(f'{k} {v:.0f}' for k, v in TIMEOUTS.items())}).")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md", help="Where to write the results.")
    args = parser.parse_args()
    env = environment()
    results = []
    for script in benchmark_scripts(args.only):
        print(f"\n=== {script.stem} ===", flush=True)
        missing = PRECONDITIONS.get(script.stem, str)()
        if missing:
            print(f"skipped: {missing}", flush=True)
            results.append(Result(script.stem, [], 0, 0.0, f"skipped: {missing}", skipped=missing))
            continue
        results.append(run_one(script, args.timeout or TIMEOUTS.get(script.stem, DEFAULT_TIMEOUT)))
    write_text_atomic(args.output, render(env, results) + "\n")
    failed = [r.name for r in results if r.returncode != 0]
    print(f"\nwrote {args.output}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
