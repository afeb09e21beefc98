"""Vote ingestion under load, then kill -9 of the server: every acknowledged vote survives, the store is intact.

The server is `llmops serve` in a subprocess on 127.0.0.1 (a free port). 16 clients send votes on 1,000
battles; the server is killed with SIGKILL while votes are in flight; after a restart the clients send the
votes that were not acknowledged (a 409 means the vote had been committed before the kill).
"""

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from llmops import db
from llmops.serve.arena import insert_battle, new_battle
from llmops.serve.server import GatewayProcess
from llmops.workspace import Workspace

pytestmark = pytest.mark.integration
BATTLES, CLIENTS, KILL_AFTER = 1000, 16, 600
CHOICES = ("a", "b", "tie", "both_bad")
OPEN_ARENA = ["auth.open_arena=true"]  # the clients vote as the public does, without signing in


@pytest.fixture
def battles(workspace: Workspace) -> list[str]:
    with workspace.engine.begin() as conn:
        made = [new_battle(f"question {i}", f"user-{i % 50}", ("chat-v1.0", "chat-v1.1"),
                           (f"answer a {i}", f"answer b {i}"), {"temperature": 0.7}) for i in range(BATTLES)]
        for battle in made:
            insert_battle(conn, battle)
    workspace.engine.dispose()
    return [b.id for b in made]


def send_votes(url: str, jobs: list[tuple[str, str]], acked: dict[str, str], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for battle_id, choice in jobs:
            if stop.is_set():
                return
            try:
                response = client.post(f"/v1/arena/battles/{battle_id}/vote", json={"vote": choice})
            except httpx.TransportError:
                return
            if response.status_code in (200, 409):
                acked[battle_id] = choice


def run_clients(url: str, jobs: list[tuple[str, str]], acked: dict[str, str], kill: GatewayProcess | None) -> None:
    stop = threading.Event()
    shares = [jobs[i::CLIENTS] for i in range(CLIENTS)]
    threads = [threading.Thread(target=send_votes, args=(url, share, acked, stop)) for share in shares]
    for thread in threads:
        thread.start()
    if kill is not None:
        while len(acked) < KILL_AFTER and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        kill.kill()
        stop.set()
    for thread in threads:
        thread.join(60)


def test_acknowledged_votes_survive_kill_9(workspace: Workspace, battles: list[str], tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    jobs = [(battle_id, CHOICES[i % 4]) for i, battle_id in enumerate(battles)]
    acked: dict[str, str] = {}
    server = GatewayProcess(workspace.root, log_path, OPEN_ARENA)
    run_clients(server.url, jobs, acked, kill=server)
    acked_before_kill = dict(acked)
    assert KILL_AFTER <= len(acked_before_kill) < BATTLES

    with sqlite3.connect(workspace.root / "llmops.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    restarted = GatewayProcess(workspace.root, log_path, OPEN_ARENA)
    try:
        run_clients(restarted.url, [job for job in jobs if job[0] not in acked], acked, kill=None)
    finally:
        restarted.stop()
    with workspace.engine.connect() as conn:
        stored = {row.id: row.choice for row in conn.execute(select(db.votes.c.id, db.votes.c.choice))}
        marked = {row.id: row.vote for row in conn.execute(select(db.battles.c.id, db.battles.c.vote))}
    for battle_id, choice in acked_before_kill.items():
        assert stored[battle_id] == choice
        assert marked[battle_id] == choice
    assert len(stored) == BATTLES and set(marked.values()) <= set(CHOICES)
    with sqlite3.connect(workspace.root / "llmops.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
