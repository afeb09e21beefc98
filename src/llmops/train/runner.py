"""LLaMAFactoryTrainer (spec 5.1): `llamafactory-cli train` in a subprocess, followed through the database.

Each run gets `runs/<run_id>/` (train.log, the config and the resolved settings) and a row in `runs`.
The command runs under `llmops.train.supervise` in its own process group; stop = SIGINT, then SIGTERM,
then SIGKILL. Multi-GPU: FORCE_TORCHRUN, NNODES, NPROC_PER_NODE … in the environment and a
`deepspeed` key in the config reach LLaMA-Factory unchanged.
"""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmops.errors import LLMOpsError
from llmops.settings import save_settings
from llmops.train import runs
from llmops.train.configs import FILE_STAGES, read_config, validate_config, write_config
from llmops.train.runs import RunStatus
from llmops.workspace import Workspace, current_workspace


def llamafactory_command(workspace: Workspace) -> str:
    """The `llamafactory-cli` beside the Python running llmops (or the configured command)."""
    configured = workspace.settings.train.llamafactory_cli
    if configured == "llamafactory-cli":
        beside = Path(sys.executable).parent / "llamafactory-cli"
        if beside.exists():
            return str(beside)
    found = shutil.which(configured)
    if found is None:
        raise LLMOpsError(f"train.llamafactory_cli: {configured!r} not found (install llamafactory)")
    return found


def process_alive(pid: int, marker: str) -> bool:
    """Whether `pid` is a live (not zombie) process whose command line contains `marker` (no pid reuse)."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X") and marker.encode() in cmdline
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _new_run_id(stage: str) -> str:
    return f"{FILE_STAGES.get(stage, stage)}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class LLaMAFactoryTrainer:
    """Start, follow and stop LLaMA-Factory training runs of one workspace (default: the current folder's).

    `get_status()` and `stop_training()` without a run id act on the current run: the one this trainer started
    last, else the workspace's newest running run, else its newest run."""

    def __init__(self, workspace: Workspace | None = None) -> None:
        self.workspace = workspace or current_workspace()
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._started: str | None = None

    def start_training(self, config: dict[str, Any] | Path | str, overrides: list[str] | None = None) -> str:
        """Start a run from a config dict (placed and written first) or a config file; returns the run id.
        Nothing runs unless LLaMA-Factory's parser accepts the config (`validate_config`: a typo is named)."""
        config = Path(config) if isinstance(config, str) else config
        if isinstance(config, Path) and not overrides:
            config_path, placed = config.resolve(), read_config(config)
            validate_config(placed, str(config_path))
        else:
            source = read_config(config) if isinstance(config, Path) else config
            written = write_config(self.workspace, source, overrides, validate=True)
            config_path, placed = written.path, written.config
        self._refuse_busy_output(str(placed.get("output_dir", "")), config_path)
        stage = str(placed.get("stage", ""))
        run_id = _new_run_id(stage)
        run_dir = self.workspace.runs_dir / run_id
        run_dir.mkdir(parents=True)
        shutil.copyfile(config_path, run_dir / "config.yaml")
        save_settings(self.workspace.settings, run_dir / "settings.yaml")
        runs.insert_run(self.workspace, run_id, stage, config_path, str(placed.get("output_dir", "")), run_dir)
        command = [llamafactory_command(self.workspace), "train", str(config_path)]
        supervisor = [sys.executable, "-m", "llmops.train.supervise", str(self.workspace.root), run_id, "--"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with (run_dir / runs.LOG_FILE).open("ab") as log:
            process = subprocess.Popen(
                supervisor + command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workspace.root,
                start_new_session=True,
            )
        self._children[run_id] = process
        self._started = run_id
        runs.set_pid(self.workspace, run_id, process.pid)
        return run_id

    def _refuse_busy_output(self, output_dir: str, config_path: Path) -> None:
        """LLMOpsError when a run still active (its process alive) trains into `output_dir`: two runs would write
        the same checkpoints (a start pressed twice)."""
        if not output_dir:
            return
        target = (self.workspace.root / output_dir).resolve()
        for run in self.list_runs():
            if not run.finished and (self.workspace.root / run.output_dir).resolve() == target \
                    and not self.get_status(run.id).finished:
                raise LLMOpsError(f"{config_path}: output_dir {output_dir}: run {run.id} is training into it; wait "
                                  f"for it to finish or stop it (`llmops train stop {run.id}`)")

    def current_run(self) -> str:
        """The id of the current run (see the class); LLMOpsError when the workspace has none."""
        if self._started is not None:
            return self._started
        known = self.list_runs()
        if not known:
            raise LLMOpsError(f"{self.workspace.runs_dir}: no training run yet (start one with start_training)")
        running = [run for run in known if not run.finished]
        return (running or known)[-1].id

    def get_status(self, run_id: str | None = None) -> RunStatus:
        """The run's state and latest progress (default: the current run's); a run whose process is gone is
        finished here."""
        run_id = run_id or self.current_run()
        status = runs.read_run(self.workspace, run_id)
        if status.finished or status.pid is None:
            return status
        child = self._children.get(run_id)
        alive = child.poll() is None if child else process_alive(status.pid, run_id)
        if alive:
            return status
        if child is not None:
            # The supervisor records the end itself just before it exits; give that priority.
            runs.finish_run(self.workspace, run_id, None, "supervisor ended without recording the run")
        else:
            runs.finish_run(self.workspace, run_id, None, f"process {status.pid} is gone (killed or crashed)")
        return runs.read_run(self.workspace, run_id)

    def _signal_group(self, pid: int, signum: int) -> None:
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            return

    def _wait_until_finished(self, run_id: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.get_status(run_id).finished:
                return True
            time.sleep(0.2)
        return self.get_status(run_id).finished

    def stop_training(self, run_id: str | None = None, grace_s: float | None = None) -> RunStatus:
        """Stop a run (default: the current one): SIGINT, then SIGTERM, then SIGKILL to its process group; it
        ends `stopped`."""
        run_id = run_id or self.current_run()
        status = self.get_status(run_id)
        if status.finished:
            return status
        runs.mark_stopping(self.workspace, run_id)
        grace = self.workspace.settings.train.stop_grace_s if grace_s is None else grace_s
        if status.pid is not None:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                self._signal_group(status.pid, signum)
                if self._wait_until_finished(run_id, grace):
                    break
        return self.get_status(run_id)

    def wait(self, run_id: str, on_progress: Callable[[RunStatus], None] | None = None,
             poll_s: float = 1.0) -> RunStatus:
        """Block until the run ends, calling `on_progress` with each status seen."""
        while True:
            status = self.get_status(run_id)
            if on_progress is not None:
                on_progress(status)
            if status.finished:
                self._children.pop(run_id, None)
                return status
            time.sleep(poll_s)

    def logs(self, run_id: str, tail: int | None = None) -> str:
        """The run's log (the last `tail` lines if given): its own train.log, refused outside runs/."""
        path = self.workspace.confine(runs.read_run(self.workspace, run_id, with_progress=False).log_path,
                                      self.workspace.runs_dir)
        if tail is not None:
            return runs.log_tail(path, tail)
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def list_runs(self) -> list[RunStatus]:
        return runs.list_runs(self.workspace)


def get_trainer(workspace: Workspace | None = None) -> LLaMAFactoryTrainer:
    """Spec appendix B's entry point: the trainer of `workspace` (default: the current folder's)."""
    return LLaMAFactoryTrainer(workspace)
