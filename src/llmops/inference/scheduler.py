"""Continuous batching: one worker thread decodes every request in flight, one token per step.

Each step gives every running row of a base model its next token, in one forward pass; a row that finishes
(eos or its token limit) is answered and leaves at once, and waiting requests join the batch between steps,
up to `max_batch_size` rows per base. When nothing runs, the worker waits for the first request and keeps
taking more while they arrive less than `wait_ms` apart (at most `MAX_WAIT_FACTOR × wait_ms`), so a burst of
clients starts together instead of one by one. Loading and unloading models wait in `exclusive()` for the
step in progress, and the worker lets them in before its next step, so they never happen under a forward
pass and a busy worker cannot starve them. A failing step fails its rows, never the worker; if the worker dies
anyway, every request queued or running is answered with `WorkerDied` (`workers.py`).
"""

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from llmops.errors import LLMOpsError
from llmops.inference.decoding import Base, DecodeBatch, Row, finish
from llmops.inference.workers import WorkerHealth, WorkerThread

MAX_WAIT_FACTOR = 10


@dataclass
class Stats:
    steps: int = 0  # forward passes over running rows
    rows: int = 0  # rows those steps decoded (rows / steps = the mean batch size)
    requests: int = 0  # requests admitted


class ContinuousBatcher:
    def __init__(self, *, max_batch_size: int, wait_ms: float) -> None:
        self.max_batch_size = max_batch_size
        self.wait_s = wait_ms / 1000
        self.stats = Stats()
        self._lock = threading.Lock()  # held through each step
        self._gate = threading.Lock()  # taken before the lock by others, and passed by the worker before each step
        self._queue: queue.Queue[tuple[Base, Row] | None] = queue.Queue()
        self._pending: deque[tuple[Base, Row]] = deque()
        self._batches: dict[int, DecodeBatch] = {}  # id(base) → its running batch
        self._worker = WorkerThread("llmops-decoder", self._loop, self._die)
        self._state_lock = threading.Lock()
        self._started = self._closed = self._closing = False

    def submit(self, base: Base, row: Row) -> None:
        with self._state_lock:
            self._worker.check()
            if self._closed:
                raise RuntimeError("the engine is closed")
            if not self._started:
                self._worker.start()
                self._started = True
            self._queue.put((base, row))

    def close(self) -> None:
        """Finish every queued and running request, then stop the worker."""
        with self._state_lock:
            self._closed = True
            started = self._started
        if started:
            self._queue.put(None)
            self._worker.join()

    def health(self) -> WorkerHealth:
        """The worker's state; `queued` counts the requests not yet decoding (read without the lock)."""
        return self._worker.health(self._queue.qsize() + len(self._pending))

    def _die(self) -> None:
        """Answer every queued and running request: nothing will decode them."""
        died = self._worker.died()
        with self._state_lock, self._lock:
            self._fail_all(died)
            for entry in self._drain():
                if entry is not None:
                    finish(entry[1], died)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """No decoding meanwhile (waits for the step in progress): for loading and unloading models."""
        with self._gate, self._lock:
            yield

    def in_flight(self) -> int:
        """Requests queued or being decoded."""
        with self.exclusive():
            return self._queue.qsize() + len(self._pending) + sum(len(b.rows) for b in self._batches.values())

    def drop_model(self, model: str) -> None:
        """Fail the queued and running requests of `model` (it is being unloaded); call inside `exclusive()`."""
        error = LLMOpsError(f"model {model!r}: unloaded while generating")
        for entry in self._drain():
            if entry is not None and entry[1].model == model:
                finish(entry[1], error)
            else:
                self._queue.put(entry)  # back in the queue, so a waiting worker still wakes for it
        for entry in [entry for entry in self._pending if entry[1].model == model]:
            self._pending.remove(entry)
            finish(entry[1], error)
        with torch.inference_mode():  # the batches' tensors are inference tensors
            for batch in self._batches.values():
                batch.remove(lambda row: row.model == model, error)

    def _loop(self) -> None:
        """Step while there is work; when idle, wait for arrivals; stop once closed and idle."""
        while True:
            arrivals = [] if self._has_work() else self._wait_for_arrivals()
            with self._gate:  # a caller waiting in `exclusive()` goes first
                pass
            with self._lock, torch.inference_mode():
                for entry in [*arrivals, *self._drain()]:
                    if entry is None:
                        self._closing = True
                    else:
                        self._pending.append(entry)
                if self._closing and not self._has_work():
                    return
                try:
                    self._step_all()
                except Exception as exc:  # never leave a caller waiting on a dead worker
                    self._fail_all(exc)

    def _fail_all(self, error: Exception) -> None:
        """Answer every pending and running row with `error` and forget the batches (no tensor work)."""
        rows = [row for _, row in self._pending] + [row for batch in self._batches.values() for row in batch.rows]
        self._pending.clear()
        self._batches.clear()
        for row in rows:
            finish(row, error)

    def _has_work(self) -> bool:
        return bool(self._pending or any(batch.rows for batch in self._batches.values()) or not self._queue.empty())

    def _wait_for_arrivals(self) -> list[tuple[Base, Row] | None]:
        """Block for the next entry, then take those that follow within the gap (a close signal ends the wait)."""
        if self._closing:
            return []
        arrivals = [self._queue.get()]
        closes_at = time.monotonic() + self.wait_s * MAX_WAIT_FACTOR
        while arrivals[-1] is not None and len(arrivals) < self.max_batch_size:
            timeout = min(self.wait_s, closes_at - time.monotonic())
            if timeout <= 0:
                break
            try:
                arrivals.append(self._queue.get(timeout=timeout))
            except queue.Empty:
                break
        return arrivals

    def _drain(self) -> list[tuple[Base, Row] | None]:
        """Everything queued right now."""
        entries: list[tuple[Base, Row] | None] = []
        while True:
            try:
                entries.append(self._queue.get_nowait())
            except queue.Empty:
                return entries

    def _step_all(self) -> None:
        joining: dict[int, list[Row]] = {}
        waiting: deque[tuple[Base, Row]] = deque()
        for base, row in self._pending:
            if row.cancelled():
                continue
            if id(base) not in self._batches:
                self._batches[id(base)] = DecodeBatch(base, self.max_batch_size)
            batch, rows = self._batches[id(base)], joining.setdefault(id(base), [])
            if len(batch.rows) + len(rows) < self.max_batch_size:
                rows.append(row)
            else:
                waiting.append((base, row))
        self._pending = waiting
        for key, batch in list(self._batches.items()):
            rows = joining.get(key, [])
            self.stats.steps += bool(batch.rows)
            self.stats.rows += len(batch.rows)
            self.stats.requests += len(rows)
            try:
                batch.step(rows)
            except Exception as exc:  # a failing forward pass fails its rows, not the worker
                for row in rows:
                    finish(row, exc)
                batch.fail(exc)
            if not batch.rows:
                del self._batches[key]
