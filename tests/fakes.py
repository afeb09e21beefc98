"""Shared by the tests that serve from a fake backend: its `stream` in terms of its `complete`."""

import re
from collections.abc import AsyncGenerator
from typing import Any

from llmops.serve.types import Chunk, Message, Sampling


async def stream_of(backend: Any, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk]:
    """`backend.complete`'s answer word by word, then the completion."""
    completion = await backend.complete(model, messages, sampling)
    for piece in re.findall(r"\s*\S+|\s+", completion.text):
        yield Chunk(piece)
    yield Chunk("", completion)
