"""Values shared by the serving modules: sampling parameters, a completion, the backend protocol."""

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

from llmops.errors import LLMOpsError

Message = dict[str, str]


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of spec 10.3.2; `temperature == 0` means greedy decoding."""

    max_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.1

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop | length


@dataclass(frozen=True)
class Chunk:
    """A piece of a streamed completion; the last one has no text and carries the whole completion."""

    text: str
    completion: Completion | None = None


class PromptTooLong(LLMOpsError):
    """The prompt does not fit the model's context: the client's error (HTTP 400, like every LLMOpsError that
    reaches the gateway), not a failure of the version."""


class BackendError(Exception):
    """A backend failed to produce a completion (an upstream error, a crashed generate): HTTP 502."""


class ChatBackend(Protocol):
    """What serves a version: the embedded engine (InferenceModel) or an upstream OpenAI-compatible server."""

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        """The assistant's reply to `messages` from version `model`."""
        ...

    def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk, None]:
        """The same reply, in pieces as they are produced; the last chunk carries the completion."""
        ...
