"""The runner's process control and its database rows, with a small script in place of llamafactory-cli."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops.errors import LLMOpsError
from llmops.train import runs
from llmops.train.runner import LLaMAFactoryTrainer, process_alive
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.store

FAKE_CLI = '''
import json, sys, time, yaml
config = yaml.safe_load(open(sys.argv[2]))
out = config["output_dir"]
import os; os.makedirs(out, exist_ok=True)
if config.get("dataset") == "missing":
    print("ValueError: Undefined dataset missing in dataset_info.json.", flush=True)
    sys.exit(1)
for step in range(1, 1000):
    with open(os.path.join(out, "trainer_log.jsonl"), "a") as log:
        log.write(json.dumps({"current_steps": step, "total_steps": 1000, "loss": 2.0, "lr": 1e-4}) + "\\n")
    if step == int(config.get("max_steps", 1000)):
        json.dump({"train_loss": 2.0}, open(os.path.join(out, "all_results.json"), "w"))
        sys.exit(0)
    time.sleep(0.05)
'''


@pytest.fixture
def fake_workspace(workspace: Workspace, tmp_path: Path) -> Workspace:
    script = tmp_path / "fake-llamafactory-cli"
    script.write_text(f"#!{sys.executable}\n{FAKE_CLI}")
    script.chmod(0o755)
    return open_workspace(workspace.root, [f"train.llamafactory_cli={script}", "train.stop_grace_s=5"])


def _config(workspace: Workspace, **extra: object) -> dict[str, object]:
    return {"model_name_or_path": "Qwen/Qwen2-1.5B", "stage": "sft", "dataset": "d",
            "output_dir": str(workspace.root / "checkpoints/sft/x"), **extra}


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _orphan_run(workspace: Workspace, run_id: str, pid: int, log: str) -> None:
    run_dir = workspace.runs_dir / run_id
    run_dir.mkdir(parents=True)
    (run_dir / runs.LOG_FILE).write_text(log)
    runs.insert_run(workspace, run_id, "sft", run_dir / "c.yaml", str(run_dir / "out"), run_dir)
    runs.set_pid(workspace, run_id, pid)


def test_status_after_restart_marks_a_dead_run_failed(workspace: Workspace) -> None:
    _orphan_run(workspace, "sft-dead", _dead_pid(), "step 1\nRuntimeError: CUDA out of memory.\n")
    status = LLaMAFactoryTrainer(workspace).get_status("sft-dead")
    assert status.status == "failed" and status.exit_code is None and status.finished_at is not None
    assert "is gone" in status.error and "CUDA out of memory" in status.error
    assert any("out of memory" in line for line in status.metrics["diagnosis"])


def test_reused_pid_of_another_process_counts_as_dead(workspace: Workspace) -> None:
    assert process_alive(os.getpid(), "no-such-run-id") is False
    _orphan_run(workspace, "sft-reused", os.getpid(), "")
    assert LLaMAFactoryTrainer(workspace).get_status("sft-reused").status == "failed"


def test_dead_run_that_was_being_stopped_is_stopped(workspace: Workspace) -> None:
    _orphan_run(workspace, "sft-stopping", _dead_pid(), "")
    assert runs.mark_stopping(workspace, "sft-stopping")
    assert LLaMAFactoryTrainer(workspace).get_status("sft-stopping").status == "stopped"
    assert not runs.mark_stopping(workspace, "sft-stopping")


def test_successful_run_records_exit_code_and_metrics(fake_workspace: Workspace) -> None:
    trainer = LLaMAFactoryTrainer(fake_workspace)
    run_id = trainer.start_training(_config(fake_workspace, max_steps=3))
    seen: list[str] = []
    status = trainer.wait(run_id, lambda s: seen.append(s.status), poll_s=0.1)
    assert status.status == "succeeded" and status.exit_code == 0 and seen[-1] == "succeeded"
    assert status.metrics["train_loss"] == 2.0
    assert status.progress is not None and status.progress.step == 3
    run_dir = fake_workspace.runs_dir / run_id
    assert (run_dir / "config.yaml").exists() and (run_dir / "settings.yaml").exists()


def test_failed_run_keeps_log_tail_and_diagnosis(fake_workspace: Workspace) -> None:
    trainer = LLaMAFactoryTrainer(fake_workspace)
    status = trainer.wait(trainer.start_training(_config(fake_workspace, dataset="missing")), poll_s=0.1)
    assert status.status == "failed" and status.exit_code == 1
    assert "Undefined dataset missing" in status.error
    assert "not registered" in status.metrics["diagnosis"][0]


def test_stop_is_seen_by_a_new_trainer(fake_workspace: Workspace) -> None:
    run_id = LLaMAFactoryTrainer(fake_workspace).start_training(_config(fake_workspace))
    other = LLaMAFactoryTrainer(fake_workspace)
    while (status := other.get_status(run_id)).progress is None:
        assert not status.finished, status.error
        time.sleep(0.05)
    assert status.progress.total == 1000
    stopped = other.stop_training(run_id, grace_s=5)
    assert stopped.status == "stopped" and stopped.finished
    assert stopped.metrics["diagnosis"] == [] and "--- log tail ---" in stopped.error


def test_without_a_run_id_the_current_run_is_the_own_then_the_running_one(fake_workspace: Workspace) -> None:
    starter = LLaMAFactoryTrainer(fake_workspace)
    with pytest.raises(LLMOpsError, match="no training run yet"):
        starter.get_status()
    running = starter.start_training(_config(fake_workspace))
    _orphan_run(fake_workspace, "sft-newer-dead", _dead_pid(), "")
    assert LLaMAFactoryTrainer(fake_workspace).get_status("sft-newer-dead").finished
    assert starter.get_status().id == running
    other = LLaMAFactoryTrainer(fake_workspace)
    assert other.get_status().id == running  # the newest run still running, not the newest run
    assert other.stop_training(grace_s=5).status == "stopped"
    assert LLaMAFactoryTrainer(fake_workspace).get_status().id == "sft-newer-dead"  # none running: the newest


def test_a_second_run_into_the_output_dir_of_an_active_one_is_refused(fake_workspace: Workspace) -> None:
    trainer = LLaMAFactoryTrainer(fake_workspace)
    first = trainer.start_training(_config(fake_workspace))
    with pytest.raises(LLMOpsError, match=f"run {first} is training into it.*llmops train stop {first}"):
        LLaMAFactoryTrainer(fake_workspace).start_training(_config(fake_workspace))  # "Start" pressed twice
    elsewhere = trainer.start_training({**_config(fake_workspace), "output_dir": "checkpoints/sft/y"})
    for run_id in (first, elsewhere):
        assert trainer.stop_training(run_id, grace_s=5).status == "stopped"
    again = trainer.start_training(_config(fake_workspace, max_steps=2))  # the first is over: its folder is free
    assert trainer.wait(again, poll_s=0.1).status == "succeeded"
    assert len(trainer.list_runs()) == 3
