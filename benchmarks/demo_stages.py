"""The demo's wall time per stage, read from the demo's report (`<workspace>/reports/demo/report.md`).

`llmops demo` times every step and writes them to the report's Summary table (step, result, seconds); this
script reads that table and prints each stage's seconds and share of the total beside its result. With
`--run` it first runs the demo (`llmops demo --workspace W --replace`, about 10 minutes on 2 CPU cores)
and also prints the demo's total wall time, so start-up and report writing show up as the remainder.
Without a report (and without `--run`) it says so and exits 0.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/demo_stages.py [--workspace demo-workspace] [--run] [--json PATH]
"""

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPORT = Path("reports") / "demo" / "report.md"
SUMMARY_HEADER = "| step | result | seconds |"


@dataclass(frozen=True)
class Stage:
    name: str
    seconds: float
    result: str


def _cells(line: str) -> list[str]:
    cells = [cell.strip().replace("\\|", "|") for cell in line.strip().strip("|").split(" | ")]
    return cells if len(cells) == 3 else []


def read_stages(report: Path) -> list[Stage]:
    """The rows of the report's Summary table (header `| step | result | seconds |`)."""
    lines = report.read_text(encoding="utf-8").splitlines()
    if SUMMARY_HEADER not in lines:
        raise SystemExit(f"{report}: no Summary table ({SUMMARY_HEADER}) found")
    stages = []
    for line in lines[lines.index(SUMMARY_HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        if not cells:
            raise SystemExit(f"{report}: cannot read the Summary row {line!r}")
        stages.append(Stage(cells[0], float(cells[2]), cells[1]))
    return stages


def run_demo(workspace: Path) -> float:
    command = [sys.executable, "-c", "from llmops.cli import main; main()", "demo", "--workspace", str(workspace),
               "--replace"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def table(stages: list[Stage], wall_s: float | None) -> str:
    total = sum(stage.seconds for stage in stages)
    width = max([len(stage.name) for stage in stages] + [10])
    lines = [f"{'stage':{width}}{'seconds':>9}{'share':>8}  result"]
    lines += [f"{s.name:{width}}{s.seconds:>9.0f}{s.seconds / total:>8.0%}  {s.result[:70]}" for s in stages]
    lines.append(f"{'sum of stages':{width}}{total:>9.0f}{1:>8.0%}")
    if wall_s is not None:
        lines.append(f"{'demo wall time':{width}}{wall_s:>9.0f}{wall_s / total:>8.0%}  (start-up, report, charts)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("demo-workspace"), help="The demo's workspace.")
    parser.add_argument("--run", action="store_true", help="Run the demo first (replaces the workspace).")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON to this file.")
    args = parser.parse_args()
    wall_s = run_demo(args.workspace) if args.run else None
    report = args.workspace / REPORT
    summary: dict[str, Any]
    if report.is_file():
        stages = read_stages(report)
        print(f"demo report {report} (written {time.ctime(report.stat().st_mtime)})")
        print(table(stages, wall_s))
        summary = {"report": str(report), "stages": [asdict(s) for s in stages], "wall_s": wall_s,
                   "sum_s": sum(s.seconds for s in stages)}
    else:
        print(f"skipped: no demo report at {report} (run `make demo` first, or pass --run)")
        summary = {"skipped": f"no demo report at {report}"}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
