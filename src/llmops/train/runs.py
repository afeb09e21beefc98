"""Training runs as rows of the `runs` table, so any process can see and finish them.

A run is `running` (or `stopping` once a stop was asked) until it is finished exactly once, by whoever
sees the end first: the supervisor with the exit code, or a status check that finds the process gone.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import insert, select, update

from llmops import db
from llmops.errors import LLMOpsError
from llmops.train.diagnose import Diagnosis, diagnose_log, diagnose_losses
from llmops.train.progress import Progress, final_metrics, losses, read_progress
from llmops.workspace import Workspace

ACTIVE = ("running", "stopping")
LOG_FILE = "train.log"


@dataclass(frozen=True)
class RunStatus:
    id: str
    stage: str
    status: str  # running | stopping | succeeded | failed | stopped
    pid: int | None
    exit_code: int | None
    config_path: str
    output_dir: str
    run_dir: str
    started_at: float
    finished_at: float | None
    error: str
    metrics: dict[str, Any]
    progress: Progress | None = None

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE

    @property
    def log_path(self) -> Path:
        return Path(self.run_dir) / LOG_FILE


def insert_run(workspace: Workspace, run_id: str, stage: str, config_path: Path, output_dir: str,
               run_dir: Path) -> None:
    with workspace.engine.begin() as conn:
        conn.execute(insert(db.runs).values(
            id=run_id, stage=stage, config_path=str(config_path), output_dir=output_dir, run_dir=str(run_dir),
            status="running", started_at=time.time(), error="", metrics={},
        ))


def set_pid(workspace: Workspace, run_id: str, pid: int) -> None:
    with workspace.engine.begin() as conn:
        conn.execute(update(db.runs).where(db.runs.c.id == run_id).values(pid=pid))


def mark_stopping(workspace: Workspace, run_id: str) -> bool:
    """Record that a stop was asked; False when the run is no longer active."""
    with workspace.engine.begin() as conn:
        result = conn.execute(
            update(db.runs).where((db.runs.c.id == run_id) & (db.runs.c.status == "running")).values(status="stopping")
        )
        return result.rowcount == 1


def _row(workspace: Workspace, run_id: str) -> Any:
    with workspace.engine.connect() as conn:
        row = conn.execute(select(db.runs).where(db.runs.c.id == run_id)).first()
    if row is None:
        raise LLMOpsError(f"run {run_id!r}: unknown (see `llmops train status`)")
    return row


def _status_from(row: Any, with_progress: bool) -> RunStatus:
    data = dict(row._mapping)
    progress = None
    if with_progress:
        run_dir = Path(data["run_dir"])
        progress = read_progress(Path(data["output_dir"]), _end_of(run_dir / LOG_FILE), _samples_per_step(run_dir))
    return RunStatus(**data, progress=progress)


def _samples_per_step(run_dir: Path) -> int:
    """Batch size × gradient accumulation × NPROC_PER_NODE of the run's config (0 when unknown)."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        batch = int(config.get("per_device_train_batch_size", 8)) * int(config.get("gradient_accumulation_steps", 1))
    except (OSError, yaml.YAMLError, TypeError, ValueError, AttributeError):
        return 0
    return batch * int(os.environ.get("NPROC_PER_NODE", "1"))


def _end_of(path: Path, size: int = 65536) -> str:
    """The last `size` bytes of a file as text (enough for the latest progress lines)."""
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", errors="replace")


def read_run(workspace: Workspace, run_id: str, with_progress: bool = True) -> RunStatus:
    return _status_from(_row(workspace, run_id), with_progress)


def list_runs(workspace: Workspace) -> list[RunStatus]:
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(db.runs).order_by(db.runs.c.started_at)).all()
    return [_status_from(row, with_progress=False) for row in rows]


def log_tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _diagnoses(workspace: Workspace, row: Any) -> list[Diagnosis]:
    log_path = Path(row.run_dir) / LOG_FILE
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    found = diagnose_log(text, row.config_path, str(workspace.dataset_info_path))
    not_converging = diagnose_losses(losses(Path(row.output_dir)), row.config_path)
    return [*found, not_converging] if not_converging else found


def finish_run(workspace: Workspace, run_id: str, exit_code: int | None, reason: str = "") -> RunStatus:
    """Finish an active run once: succeeded (exit 0), stopped (a stop was asked) or failed, with diagnosis."""
    row = _row(workspace, run_id)
    if row.status not in ACTIVE:
        return _status_from(row, with_progress=False)
    diagnoses = _diagnoses(workspace, row)
    metrics: dict[str, Any] = {"diagnosis": [str(d) for d in diagnoses]}
    if exit_code == 0 and row.status == "running":
        status, error = "succeeded", ""
        metrics.update(final_metrics(Path(row.output_dir)))
    else:
        status = "stopped" if row.status == "stopping" else "failed"
        tail = log_tail(Path(row.run_dir) / LOG_FILE, workspace.settings.train.log_tail_lines)
        head = reason or f"exit code {exit_code}"
        error = "\n".join([head, *metrics["diagnosis"], "--- log tail ---", tail])
    with workspace.engine.begin() as conn:
        conn.execute(
            update(db.runs)
            .where((db.runs.c.id == run_id) & db.runs.c.status.in_(ACTIVE))
            .values(status=status, exit_code=exit_code, finished_at=time.time(), error=error, metrics=metrics)
        )
    return read_run(workspace, run_id, with_progress=False)
