"""Two `llmops serve` processes on one PostgreSQL store, as N gateways behind a load balancer run.

Each replica is a child process on 127.0.0.1 and a free port over the same workspace, whose `database_url` names a
fresh database on the test server (LLMOPS_TEST_DATABASE_URL; skipped without it). Shown: the same sticky user →
version split on both; a traffic change or rollback acknowledged by one replica obeyed by the other's next request
(the router reads the rollout and aliases from the store on every request, nothing is cached); the guardrails
judging a candidate on requests that only the other replica served; `kill -9` of one replica under 16 voting
clients losing no acknowledged vote while the other keeps serving.
"""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import pg
from llmops import db
from llmops.loop.rollout import step_rollout
from llmops.models import registry, rollouts
from llmops.models.rollouts import ROLLED_BACK
from llmops.serve.arena import insert_battle, new_battle
from llmops.serve.router import user_bucket
from llmops.serve.server import GatewayProcess, free_port
from llmops.workspace import Workspace, init_workspace, open_workspace

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not pg.server_url(), reason=pg.SKIP_REASON)]
OPEN_ARENA = ["auth.open_arena=true"]
USERS = [f"user-{i}" for i in range(24)]
BATTLES, CLIENTS, KILL_AFTER = 400, 16, 120
CHOICES = ("a", "b", "tie", "both_bad")


@pytest.fixture
def shared(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Workspace]:
    """A workspace on a fresh Postgres database: chat-v1.0 is production, chat-v2.0 (same weights) a candidate."""
    with pg.fresh_database() as url:
        ws = init_workspace(tmp_path / "ws", overrides=[f"database_url={url}"])
        for _ in range(2):
            registry.register_version(ws, kind="chat", stage="sft", parent=None, base_model=str(tiny_model_dir),
                                      path=str(tiny_model_dir), merged=True)
        registry.set_alias(ws, "production", "chat-v1.0")
        try:
            yield ws
        finally:
            ws.engine.dispose()


@pytest.fixture
def replicas(shared: Workspace, tmp_path: Path) -> Iterator[list[GatewayProcess]]:
    """Two gateways on the shared workspace, started at the same time."""
    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(lambda i: GatewayProcess(shared.root, tmp_path / f"replica{i}.log", OPEN_ARENA),
                                range(2)))
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()


def chat(replica: GatewayProcess, user: str, model: str = "production") -> httpx.Response:
    body = {"model": model, "user": user, "max_tokens": 2, "temperature": 0,
            "messages": [{"role": "user", "content": "Can I return the desk lamp?"}]}
    return httpx.post(f"{replica.url}/v1/chat/completions", json=body, timeout=60)


def served_by(replica: GatewayProcess, user: str) -> str:
    response = chat(replica, user)
    assert response.status_code == 200, response.text
    return str(response.json()["model"])


def admin(ws: Workspace, replica: GatewayProcess, action: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{replica.url}/v1/admin/{action}", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {ws.admin_token()}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def obeyed_after(replica: GatewayProcess, user: str, expected: str) -> float:
    """Seconds from now until `replica` serves `user` `expected`; it must on its first request after the change."""
    start = time.monotonic()
    assert served_by(replica, user) == expected
    return time.monotonic() - start


def test_replicas_share_routing_changes_and_metrics(shared: Workspace, replicas: list[GatewayProcess],
                                                    record_property: Any) -> None:
    one, two = replicas
    rollouts.start_rollout(shared, "chat-v2.0", by="cli")
    admin(shared, one, "traffic", {"traffic": 0.5})
    expected = {u: "chat-v2.0" if user_bucket(u, "chat-v2.0") < 0.5 else "chat-v1.0" for u in USERS}
    assert set(expected.values()) == {"chat-v1.0", "chat-v2.0"}
    for index, user in enumerate(USERS):  # a load balancer alternating the replicas
        first, second = (one, two) if index % 2 else (two, one)
        assert served_by(first, user) == served_by(second, user) == expected[user]

    on_production = next(u for u in USERS if expected[u] == "chat-v1.0")
    admin(shared, two, "traffic", {"traffic": 1.0})
    to_all = obeyed_after(one, on_production, "chat-v2.0")
    on_canary = next(u for u in USERS if expected[u] == "chat-v2.0")
    admin(shared, one, "rollback", {"reason": "replica test"})
    rolled_back = obeyed_after(two, on_canary, "chat-v1.0")
    assert served_by(one, on_canary) == "chat-v1.0"
    record_property("propagation_s", max(to_all, rolled_back))

    weights = registry.get_version(shared, "chat-v1.0").path  # served by no one: its upstream does not listen
    broken = registry.register_version(shared, kind="chat", stage="dpo", parent="chat-v1.0", base_model=weights,
                                       path=weights, merged=True, upstream_url=f"http://127.0.0.1:{free_port()}")
    admin(shared, one, "rollout", {"candidate": broken.name})
    admin(shared, one, "traffic", {"traffic": 1.0})
    failed = [chat(two, user).status_code for user in USERS[:6]]
    assert failed == [502] * 6
    assert served_count(one, broken.name) == 6  # replica one never served it
    step = step_rollout(open_workspace(shared.root, ["loop.guardrail_min_requests=4"]))
    assert step is not None and step.action == ROLLED_BACK
    assert (step.evidence["candidate"]["requests"], step.evidence["candidate"]["error_rate"]) == (6, 1.0)
    assert served_by(one, on_canary) == served_by(two, on_canary) == "chat-v1.0"


def served_count(replica: GatewayProcess, model: str) -> int:
    """Requests of `model` in the shared store, as `replica`'s /v1/metrics reports them."""
    models = httpx.get(f"{replica.url}/v1/metrics", timeout=30).json()["models"]
    return next((int(m["requests"]) for m in models if m["model"] == model), 0)


@pytest.fixture
def battles(shared: Workspace) -> list[str]:
    with shared.engine.begin() as conn:
        made = [new_battle(f"question {i}", f"user-{i % 50}", ("chat-v1.0", "chat-v2.0"),
                           (f"answer a {i}", f"answer b {i}"), {"temperature": 0.7}) for i in range(BATTLES)]
        for battle in made:
            insert_battle(conn, battle)
    return [b.id for b in made]


class Votes:
    """Votes sent by the clients: those acknowledged with 200 (battle → choice, when) and the 409s."""

    def __init__(self) -> None:
        self.acked: dict[str, tuple[str, float]] = {}
        self.conflicts: set[str] = set()
        self._lock = threading.Lock()

    def send(self, url: str, jobs: list[tuple[str, str]]) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for battle_id, choice in jobs:
                try:
                    response = client.post(f"/v1/arena/battles/{battle_id}/vote", json={"vote": choice})
                except httpx.TransportError:
                    return
                with self._lock:
                    if response.status_code == 200:
                        self.acked[battle_id] = (choice, time.monotonic())
                    elif response.status_code == 409:
                        self.conflicts.add(battle_id)


def test_kill_9_of_one_replica_loses_no_acknowledged_vote(shared: Workspace, replicas: list[GatewayProcess],
                                                           battles: list[str]) -> None:
    victim, survivor = replicas
    jobs = [(battle_id, CHOICES[i % 4]) for i, battle_id in enumerate(battles)]
    votes = Votes()
    threads = [threading.Thread(target=votes.send, args=(replicas[i % 2].url, jobs[i::CLIENTS]))
               for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    while len(votes.acked) < KILL_AFTER and any(t.is_alive() for t in threads):
        time.sleep(0.005)
    victim.kill()
    killed_at = time.monotonic()
    for thread in threads:
        thread.join(120)
    assert KILL_AFTER <= len(votes.acked) < BATTLES
    assert any(at > killed_at for _, at in votes.acked.values())  # the survivor's clients went on after the kill
    assert served_by(survivor, "after-the-kill") in {"chat-v1.0", "chat-v2.0"}

    unsent = [job for job in jobs if job[0] not in votes.acked and job[0] not in votes.conflicts]
    votes.send(survivor.url, unsent)  # the victim's clients fail over; a 409 means the vote was committed
    with shared.engine.connect() as conn:
        stored = {row.id: row.choice for row in conn.execute(select(db.votes.c.id, db.votes.c.choice))}
        marked = {row.id: row.vote for row in conn.execute(select(db.battles.c.id, db.battles.c.vote))}
    for battle_id, (choice, _) in votes.acked.items():
        assert stored[battle_id] == marked[battle_id] == choice
    assert len(stored) == BATTLES and set(marked.values()) <= set(CHOICES)
