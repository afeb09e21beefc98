"""The store under several processes at once, on SQLite and on Postgres: a battle takes exactly one vote, promote
and rollback never interleave a half change, and processes creating the schema at the same moment all succeed."""

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import store_race
from llmops import db
from llmops.models import registry, rollouts
from llmops.serve.arena import insert_battle, new_battle
from llmops.workspace import Workspace

pytestmark = pytest.mark.store

SPAWN = multiprocessing.get_context("spawn")


def _race(target: Callable[..., None], args_of: list[tuple[Any, ...]], rounds: int) -> list[Any]:
    """Runs `target(*args, barrier, results)` in one process per `args_of` entry, all released together by a
    barrier they share with this test at every one of their `rounds` steps; their results, in arrival order."""
    barrier = SPAWN.Barrier(len(args_of))
    results = SPAWN.Queue()
    workers = [SPAWN.Process(target=target, args=(*args, barrier, results)) for args in args_of]
    for worker in workers:
        worker.start()
    try:
        answers = [results.get(timeout=120) for _ in range(rounds * len(args_of))]
    finally:
        for worker in workers:
            worker.join(30)
    assert [worker.exitcode for worker in workers] == [0] * len(workers)
    return answers


def _versions(workspace: Workspace, count: int) -> list[str]:
    """chat-v1.0 in production and `count` dpo candidates after it."""
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    return [registry.register_version(workspace, kind="chat", stage="dpo", parent="chat-v1.0", base_model="b",
                                      path="p", merged=True).name for _ in range(count)]


def test_a_battle_takes_exactly_one_vote_from_two_processes(workspace: Workspace) -> None:
    battles = [new_battle(f"q{i}", "u", ("chat-v1.0", "chat-v1.0"), ("x", "y"), {}) for i in range(15)]
    with workspace.engine.begin() as conn:
        for battle in battles:
            insert_battle(conn, battle)
    ids = [battle.id for battle in battles]
    answers = _race(store_race.vote, [(workspace.root, ids, "a"), (workspace.root, ids, "b")], len(ids))
    with workspace.engine.connect() as conn:
        stored = dict(conn.execute(select(db.battles.c.id, db.battles.c.vote)).all())
        votes = dict(conn.execute(select(db.votes.c.id, db.votes.c.choice)).all())
    for battle_id in ids:
        statuses = {choice: status for seen, choice, status in answers if seen == battle_id}
        assert sorted(statuses.values()) == [200, 409], statuses
        winner = next(choice for choice, status in statuses.items() if status == 200)
        assert stored[battle_id] == votes[battle_id] == winner  # the battle and the pair hold the winner's vote
    assert len(votes) == len(ids)


def test_concurrent_promote_and_rollback_leave_one_consistent_change(workspace: Workspace) -> None:
    rounds = [("promote", "rollback"), ("rollback", "promote"), ("promote", "promote"), ("rollback", "rollback")] * 2
    candidates = _versions(workspace, len(rounds))
    barrier = SPAWN.Barrier(3)  # the two workers and this test, which starts each round's rollout
    results = SPAWN.Queue()
    workers = [SPAWN.Process(target=store_race.change, args=(workspace.root, [r[side] for r in rounds], barrier,
                                                            results)) for side in (0, 1)]
    for worker in workers:
        worker.start()
    try:
        for candidate in candidates:
            production = registry.aliases(workspace)["production"]
            rollouts.start_rollout(workspace, candidate, by="cli")
            barrier.wait(60)  # the workers read the rollout
            barrier.wait(60)  # and change it
            outcomes = [results.get(timeout=120)[1:] for _ in range(2)]
            _check_one_change(workspace, candidate, production, outcomes)
    finally:
        for worker in workers:
            worker.join(30)
    assert [worker.exitcode for worker in workers] == [0, 0]


def _check_one_change(workspace: Workspace, candidate: str, production: str, outcomes: list[tuple[str, str]]) -> None:
    """Exactly one of the two changes happened, whole: its event, the rollout row and the aliases agree."""
    done = [action for action, outcome in outcomes if outcome == "done"]
    assert len(done) == 1 and all(outcome in ("done", "refused") for _, outcome in outcomes), outcomes
    events = [event.event for event in rollouts.history(workspace, candidate)]
    aliases = registry.aliases(workspace)
    status = registry.get_version(workspace, candidate).status
    rollout = rollouts.latest_rollout(workspace)
    assert rollout is not None and rollout.candidate == candidate and "candidate" not in aliases
    if done == ["promote"]:
        assert events == ["started", "promoted"] and rollout.status == rollouts.PROMOTED
        assert (aliases["production"], aliases["previous"], status) == (candidate, production, "production")
    else:
        assert events == ["started", "rolled_back"] and rollout.status == rollouts.ROLLED_BACK
        assert (aliases["production"], status) == (production, "rejected")


def test_processes_creating_the_schema_at_once_all_succeed(tmp_path: Path, store_url: str) -> None:
    url = store_url or f"sqlite:///{tmp_path / 'fresh.db'}"
    assert _race(store_race.connect, [(url,)] * 6, 1) == [""] * 6
    engine = db.connect(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.schema_version)).scalar() == 1
        assert conn.execute(select(db.schema_version.c.version)).scalar() == db.SCHEMA_VERSION
    engine.dispose()

