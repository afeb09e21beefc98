"""The loop as one process per store: a `llmops loop run` holds the loop lock for its life, so a second loop — on
SQLite from the same workspace folder (the lock file), on PostgreSQL from a workspace in another folder naming the
same store (the store's advisory lock) — is refused, a tick is `busy`, and a `kill -9` of the holder frees it."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import pg
from llmops import db
from llmops.errors import LLMOpsError
from llmops.loop import flywheel
from llmops.workspace import Workspace, init_workspace, open_workspace

pytestmark = pytest.mark.store
WAIT_S = 60.0


def _second_workspace(first: Workspace, store_url: str, tmp_path: Path) -> Workspace:
    """Another process's view of the first's store: on Postgres a workspace in its own folder (another machine),
    on SQLite the same folder (its store is the folder's database file)."""
    if not store_url:
        return open_workspace(first.root)
    return init_workspace(tmp_path / "other-machine", overrides=pg.overrides(store_url))


def _start_loop(workspace: Workspace) -> tuple[subprocess.Popen[str], "queue.Queue[str]"]:
    """`llmops loop run` on `workspace` in a process of its own, and a queue of the lines it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "llmops", "loop", "run", "-w", str(workspace.root), "--every", "1h"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pipe_lines, args=(process, lines), daemon=True).start()
    return process, lines


def _pipe_lines(process: subprocess.Popen[str], lines: "queue.Queue[str]") -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)


def _wait_for_first_tick(process: subprocess.Popen[str], lines: "queue.Queue[str]") -> None:
    """Block until the loop printed its first tick (it holds the lock from before it)."""
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=1.0))
        except queue.Empty:
            assert process.poll() is None, f"the loop exited: {''.join(seen)}"
            continue
        if seen[-1].startswith("waiting"):
            return
    pytest.fail(f"no tick from the loop within {WAIT_S}s: {''.join(seen)}")


def _lock_is_free(workspace: Workspace) -> bool:
    with flywheel.loop_lock(workspace) as held:
        return held


def test_a_second_loop_on_the_same_store_is_refused_until_the_first_is_killed(
        workspace: Workspace, store_url: str, tmp_path: Path) -> None:
    other = _second_workspace(workspace, store_url, tmp_path)
    process, lines = _start_loop(workspace)
    try:
        _wait_for_first_tick(process, lines)
        with pytest.raises(LLMOpsError, match="another loop holds the loop lock") as refused:
            flywheel.run_forever(other, 0.01, lambda _: None, max_ticks=1)
        assert db.redacted(other.database_url) in str(refused.value)
        forced = flywheel.tick(other, force=True)  # the UI's "Train DPO now" while the loop runs elsewhere
        assert forced.action == "busy" and "another loop holds" in forced.detail
        assert not _lock_is_free(other)
        refused_cli = subprocess.run(
            [sys.executable, "-m", "llmops", "loop", "run", "-w", str(other.root), "--every", "1s", "--ticks", "1"],
            capture_output=True, text=True, timeout=WAIT_S, env={**os.environ, "COLUMNS": "200"})
        said = refused_cli.stdout + refused_cli.stderr
        assert refused_cli.returncode != 0 and "another loop holds" in said
        assert "loop running" not in said  # said only once the lock is held
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + WAIT_S
    while not _lock_is_free(other):
        assert time.monotonic() < deadline, "the killed loop's lock was not released"
        time.sleep(0.2)
    seen: list[flywheel.TickResult] = []
    flywheel.run_forever(other, 0.01, seen.append, max_ticks=1)
    assert [result.action for result in seen] == ["waiting"]
    other.engine.dispose()


def test_the_store_lock_is_one_session_and_leaves_with_the_block(store_url: str, workspace: Workspace) -> None:
    if not store_url:
        with db.session_lock(workspace.engine, db.LOOP_LOCK) as held:
            assert held  # SQLite has no store lock: one machine, the lock file keeps the loop single
        return
    other = create_engine(store_url)
    try:
        with db.session_lock(workspace.engine, db.LOOP_LOCK) as held:
            assert held
            with db.session_lock(other, db.LOOP_LOCK) as again:
                assert not again
        with db.session_lock(other, db.LOOP_LOCK) as after:
            assert after  # released on leaving the block, not kept by a pooled connection
    finally:
        other.dispose()


def test_a_store_url_is_shown_without_its_password() -> None:
    shown = db.redacted("postgresql+psycopg://llmops:s3cret@db.internal:5432/llmops")
    assert "s3cret" not in shown and "db.internal:5432/llmops" in shown


def _drop_lock_connection(store_url: str) -> None:
    """What a network cut or a server restart does to the loop: the session holding its lock ends."""
    other = create_engine(store_url)
    try:
        with other.connect() as conn:
            ended = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key"),
                {"key": db.LOOP_LOCK}).scalars().all()
        assert ended == [True]
    finally:
        other.dispose()


def test_a_loop_that_lost_its_store_lock_stops_before_the_next_tick(store_url: str, workspace: Workspace) -> None:
    seen: list[flywheel.TickResult] = []
    if not store_url:  # SQLite: the lock file, held as long as the process lives
        flywheel.run_forever(workspace, 0.01, seen.append, max_ticks=2)
        assert [result.action for result in seen] == ["waiting", "waiting"]
        return

    def tick_then_lose_the_lock(result: flywheel.TickResult) -> None:
        seen.append(result)
        _drop_lock_connection(store_url)

    with pytest.raises(LLMOpsError, match="before tick 2: it lost the loop lock") as stopped:
        flywheel.run_forever(workspace, 0.01, tick_then_lose_the_lock, max_ticks=3)
    assert [result.action for result in seen] == ["waiting"]
    assert "start it again" in str(stopped.value)
    assert _lock_is_free(workspace)  # nothing left held: a new loop can start
