"""Group commit and dynamic batching: writes share transactions, a bad write fails alone; batches fill up."""

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from llmops import db
from llmops.models.metrics import percentile, version_metrics
from llmops.serve.batching import DynamicBatcher
from llmops.serve.store import GroupWriter
from llmops.workspace import Workspace

pytestmark = pytest.mark.store


def _request_row(i: int, model: str = "chat-v1.0", ok: bool = True) -> dict[str, object]:
    return {"id": f"r{i}", "model": model, "created_at": 1000.0 + i, "latency_ms": float(i + 1),
            "completion_tokens": 10, "ok": ok, "error": "" if ok else "boom"}


def _insert(i: int) -> Callable[[Connection], object]:
    return lambda conn: conn.execute(db.requests.insert().values(**_request_row(i)))


def _queue_behind_a_blocker(writer: GroupWriter, writes: list[Callable[[Connection], object]]) -> list[Future[Any]]:
    gate = threading.Event()
    blocker = writer.submit(lambda conn: gate.wait(5))  # holds the writer so that the writes queue up
    futures = [writer.submit(write) for write in writes]
    gate.set()
    blocker.result(5)
    return futures


def test_group_writer_commits_many_writes_together_and_isolates_failures(workspace: Workspace) -> None:
    writer = GroupWriter(workspace.engine)
    for future in _queue_behind_a_blocker(writer, [_insert(i) for i in range(50)]):
        future.result(5)
    assert writer.commits <= 2  # 51 writes (blocker + 50 inserts) in at most two transactions
    futures = _queue_behind_a_blocker(writer, [_insert(50), _insert(0), _insert(51)])  # r0 exists already
    futures[0].result(5)
    futures[2].result(5)
    with pytest.raises(IntegrityError):
        futures[1].result(5)
    writer.close()
    with workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.requests)).scalar() == 52


def test_batcher_forms_full_batches_under_load() -> None:
    seen: list[int] = []

    def run(items: Sequence[int]) -> list[int]:
        seen.append(len(items))
        time.sleep(0.01)
        return [i * 2 for i in items]

    batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch_size=8, wait_ms=50, name="test")
    futures = [batcher.submit(i) for i in range(20)]
    assert [f.result(5) for f in futures] == [i * 2 for i in range(20)]
    batcher.close()
    assert max(seen) == 8 and sum(seen) == 20 and len(seen) == 3


def test_batcher_passes_exceptions_to_every_waiter() -> None:
    def run(items: Sequence[int]) -> list[int]:
        raise ValueError("bad batch")

    batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch_size=4, wait_ms=1, name="test")
    with pytest.raises(ValueError, match="bad batch"):
        batcher.submit(1).result(5)
    batcher.close()
    with pytest.raises(RuntimeError):
        batcher.submit(2)


def test_version_metrics_from_the_tables(workspace: Workspace) -> None:
    with workspace.engine.begin() as conn:
        for i in range(100):
            conn.execute(db.requests.insert().values(**_request_row(i, ok=i % 10 != 0)))
        conn.execute(db.requests.insert().values(**_request_row(500, model="chat-v2.0")))
        conn.execute(db.feedback.insert().values(completion_id="r1", model="chat-v1.0", score=1, created_at=1.0))
        conn.execute(db.feedback.insert().values(completion_id="r2", model="chat-v1.0", score=-1, created_at=2.0))
        conn.execute(db.feedback.insert().values(completion_id="r3", model="chat-v1.0", score=1, created_at=3.0))
        for vote, (a, b) in [("a", ("chat-v1.0", "chat-v2.0")), ("a", ("chat-v2.0", "chat-v1.0")),
                             ("tie", ("chat-v1.0", "chat-v2.0")), ("b", ("chat-v1.0", "chat-v1.0"))]:
            conn.execute(db.battles.insert().values(id=f"b{vote}{a}", created_at=1.0, prompt="q", model_a=a,
                                                    model_b=b, response_a="x", response_b="y", vote=vote,
                                                    voted_at=5.0))
    m = version_metrics(workspace, "chat-v1.0")
    assert (m.requests, m.errors, m.error_rate) == (100, 10, 0.1)
    assert (m.latency_p50_ms, m.latency_p95_ms, m.latency_p99_ms) == (50.0, 95.0, 99.0)
    ok_latency_s = sum(i + 1 for i in range(100) if i % 10 != 0) / 1000
    assert m.tokens_per_s == pytest.approx(90 * 10 / ok_latency_s)
    assert m.feedback_score == pytest.approx(1 / 3)
    assert m.win_rate == pytest.approx(0.5)  # a win, a loss, a tie; the self-battle is skipped
    later = version_metrics(workspace, "chat-v1.0", since=1090.0)
    assert later.requests == 10 and later.feedback_score is None and later.win_rate is None
    assert version_metrics(workspace, "chat-v9.0").requests == 0
    assert percentile([], 99) == 0.0


def test_batcher_without_wait_takes_everything_already_queued() -> None:
    gate = threading.Event()
    seen: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        gate.wait(5)
        seen.append(list(items))
        return list(items)

    batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch_size=64, wait_ms=0, name="test")
    first = batcher.submit(0)
    time.sleep(0.05)  # the worker now runs [0] and waits at the gate
    rest = [batcher.submit(i) for i in range(1, 30)]
    gate.set()
    assert [f.result(5) for f in [first, *rest]] == list(range(30))
    batcher.close()
    assert seen == [[0], list(range(1, 30))]
