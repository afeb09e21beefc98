"""Run a call with a deadline, so a call that blocks (on a FIFO, say) fails its test instead of hanging the suite."""

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def _unblock(fifo: Path) -> None:
    """Give a reader stuck on `fifo` an end of file (opening it for writing, then closing it)."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def within(seconds: float, call: Callable[[], T], fifos: Sequence[Path] = ()) -> T:
    """`call()`'s result, or what it raised (SystemExit too); the test fails when it takes over `seconds`."""
    results: list[T] = []
    raised: list[BaseException] = []

    def target() -> None:
        try:
            results.append(call())
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            _unblock(fifo)
        thread.join(5)
        pytest.fail(f"still running after {seconds:g}s (blocked?)")
    if raised:
        raise raised[0]
    return results[0]
