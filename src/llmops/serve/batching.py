"""Dynamic batching: a worker thread takes queued requests and runs them together.

A batch starts with the oldest waiting request and takes more while they keep coming: it closes when it
holds `max_batch_size` requests, when no request arrived for `wait_ms`, or `MAX_WAIT_FACTOR × wait_ms` after
it opened. Waiting for the gap (rather than a fixed time) lets the requests of many clients that arrive a
few milliseconds apart, e.g. right after their previous answers went out, share one batch instead of
splitting into alternating half batches. Requests that arrive while a batch runs form the next one.
A request whose caller cancelled it before its batch ran is left out (a cancelled vote is not recorded).
"""

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from llmops.inference.workers import WorkerHealth, WorkerThread, fail_waiting, settle

MAX_WAIT_FACTOR = 10
Item = TypeVar("Item")
Result = TypeVar("Result")


class DynamicBatcher(Generic[Item, Result]):
    def __init__(
        self, run: Callable[[Sequence[Item]], list[Result]], *, max_batch_size: int, wait_ms: float, name: str
    ) -> None:
        self._run = run
        self.max_batch_size = max_batch_size
        self.wait_s = wait_ms / 1000
        self._queue: queue.Queue[tuple[Item, Future[Result]] | None] = queue.Queue()
        self._batch: list[Future[Result]] = []  # the futures of the batch running
        self._worker = WorkerThread(name, self._loop, self._die)
        self._started = False
        self._closed = False
        self._lock = threading.Lock()
        self.batches = 0
        self.items = 0

    def submit(self, item: Item) -> "Future[Result]":
        """Queue `item`; the future gets its result (or the batch's exception)."""
        future: Future[Result] = Future()
        with self._lock:
            self._worker.check()
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if not self._started:
                self._worker.start()
                self._started = True
            self._queue.put((item, future))
        return future

    def close(self) -> None:
        """Finish the queued requests, then stop the worker."""
        with self._lock:
            self._closed = True
            started = self._started
        if started:
            self._queue.put(None)
            self._worker.join()

    def health(self) -> WorkerHealth:
        return self._worker.health(self._queue.qsize())

    def _die(self) -> None:
        """Fail the running and queued requests: nothing will run them."""
        with self._lock:
            fail_waiting(self._batch, self._queue, self._worker.died())

    def _next_batch(self) -> list[tuple[Item, "Future[Result]"]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        closes_at = time.monotonic() + self.wait_s * MAX_WAIT_FACTOR
        while len(batch) < self.max_batch_size and (entry := self._take(closes_at)) is not None:
            batch.append(entry)
        return batch

    def _take(self, closes_at: float) -> tuple[Item, "Future[Result]"] | None:
        """The next entry: one already queued, else one arriving within the gap; None ends the batch."""
        try:
            entry = self._queue.get_nowait()
        except queue.Empty:
            timeout = min(self.wait_s, closes_at - time.monotonic())
            if timeout <= 0:
                return None
            try:
                entry = self._queue.get(timeout=timeout)
            except queue.Empty:
                return None
        if entry is None:
            self._queue.put(None)  # the close signal ends this batch, then the worker
        return entry

    def _loop(self) -> None:
        while (entries := self._next_batch()) is not None:
            batch = [(item, future) for item, future in entries if future.set_running_or_notify_cancel()]
            self._batch = [future for _, future in batch]
            if not batch:
                continue
            self.batches += 1
            self.items += len(batch)
            try:
                results: list[object] = list(self._run([item for item, _ in batch]))
            except Exception as exc:  # a failing batch fails its callers, not the worker
                results = [exc] * len(batch)
            for future, result in zip(self._batch, results, strict=True):
                settle(future, result)
