"""Group commit: one writer thread runs queued database writes together in one transaction.

With durable commits (SQLite WAL, synchronous=FULL) every commit waits for an fsync; the gateway's writes
(request log rows, battles, votes) are small, so running all waiting writes in one transaction turns many
fsyncs into one. A caller that must not acknowledge before the data is on disk waits for its future.
If a batch fails, each of its writes is retried in a transaction of its own, so one bad write (e.g. a
second vote on a battle) fails alone; a write therefore touches nothing but the database.
A write whose caller went away (its future cancelled) is committed all the same: a request's log row must
count even when its client hung up.
"""

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Connection, Engine

from llmops.inference.workers import WorkerHealth, WorkerThread, fail_waiting, settle

Write = Callable[[Connection], Any]


class GroupWriter:
    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.Queue[tuple[Write, Future[Any]] | None] = queue.Queue()
        self._batch: list[tuple[Write, Future[Any]]] = []  # the one being committed
        self._closed = False
        self._lock = threading.Lock()
        self.commits = 0
        self._worker = WorkerThread("llmops-writer", self._loop, self._die)
        self._worker.start()

    def submit(self, write: Write) -> "Future[Any]":
        """Queue `write(connection)`; the future resolves with its result once the transaction committed."""
        future: Future[Any] = Future()
        with self._lock:
            self._worker.check()
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._queue.put((write, future))
        return future

    def close(self) -> None:
        """Commit everything queued, then stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._worker.join()

    def health(self) -> WorkerHealth:
        return self._worker.health(self._queue.qsize())

    def _die(self) -> None:
        """Fail the writes in progress and queued: nothing will commit them."""
        with self._lock:
            fail_waiting([future for _, future in self._batch], self._queue, self._worker.died())

    def _take(self) -> tuple[list[tuple[Write, "Future[Any]"]], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is None:
                return batch, True
            batch.append(entry)
        return batch, False

    def _loop(self) -> None:
        done = False
        while not done:
            self._batch, done = self._take()
            if self._batch:
                self._commit(self._batch)

    def _commit(self, batch: list[tuple[Write, "Future[Any]"]]) -> None:
        try:
            with self._engine.begin() as conn:
                results = [write(conn) for write, _ in batch]
        except Exception as exc:
            if len(batch) == 1:
                settle(batch[0][1], exc)
                return
            for entry in batch:
                self._commit_alone(entry)
            return
        self.commits += 1
        for (_, future), result in zip(batch, results, strict=True):
            settle(future, result)

    def _commit_alone(self, entry: tuple[Write, "Future[Any]"]) -> None:
        write, future = entry
        try:
            with self._engine.begin() as conn:
                result = write(conn)
        except Exception as exc:
            settle(future, exc)
            return
        self.commits += 1
        settle(future, result)
