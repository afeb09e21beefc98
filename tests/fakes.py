"""Shared by the tests that serve from a fake backend: its `stream` in terms of its `complete`, and `Echo`."""

import re
from collections.abc import AsyncGenerator
from typing import Any

from llmops.inference.types import Chunk, Completion, Message, Sampling


async def stream_of(backend: Any, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk]:
    """`backend.complete`'s answer word by word, then the completion."""
    completion = await backend.complete(model, messages, sampling)
    for piece in re.findall(r"\s*\S+|\s+", completion.text):
        yield Chunk(piece)
    yield Chunk("", completion)


class Echo:
    """A ChatBackend that answers with the model name and the start of the last message."""

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        return Completion(f"{model}: {messages[-1]['content'][:20]}", 1, 1, "stop")

    def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk]:
        return stream_of(self, model, messages, sampling)
