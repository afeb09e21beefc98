"""Values shared by the serving modules: sampling parameters, a completion, the backend protocol."""

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol, get_type_hints

from pydantic import TypeAdapter, ValidationError

from llmops.errors import LLMOpsError
from llmops.settings import MaxTokens, RepetitionPenalty, Temperature, TopK, TopP

Message = dict[str, str]


class ClientError(LLMOpsError):
    """A request refused for its own content (sampling out of range, an empty or too long prompt, an upstream's
    400/413/422): HTTP 400 at the gateway, counted as rejected, never as a failed request of the version."""


class PromptTooLong(ClientError):
    """The prompt does not fit the model's context."""


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of spec 10.3.2, checked against the ranges of `llmops.settings` when made (a bad value
    raises ClientError naming the field); `temperature == 0` means greedy decoding."""

    max_tokens: MaxTokens = 128
    temperature: Temperature = 0.7
    top_p: TopP = 0.9
    top_k: TopK = 50
    repetition_penalty: RepetitionPenalty = 1.1

    def __post_init__(self) -> None:
        for name, check in _sampling_checks().items():
            value = getattr(self, name)
            try:
                check.validate_python(value, strict=True)
            except ValidationError as exc:
                raise ClientError(f"{name}: {exc.errors()[0]['msg']} (got {value!r})") from None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@cache
def _sampling_checks() -> dict[str, TypeAdapter[Any]]:
    """A validator per field of `Sampling`, from its annotation (the type and range of `llmops.settings`)."""
    return {name: TypeAdapter(kind) for name, kind in get_type_hints(Sampling, include_extras=True).items()}


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
