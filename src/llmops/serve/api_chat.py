"""OpenAI-compatible routes: `GET /v1/models`, `POST /v1/chat/completions` (plain and `stream: true` SSE)."""

import json
import re
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.serve.router import DEFAULT_MODEL, route
from llmops.serve.state import Served, ServeState
from llmops.serve.types import Message, Sampling


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content")
    @classmethod
    def _encodable(cls, content: str) -> str:
        """Reject lone surrogates: `"\\ud800"` is valid JSON but can be neither stored nor sent back."""
        try:
            content.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("not valid Unicode (a lone surrogate)") from exc
        return content


class ChatRequest(BaseModel):
    """The fields of OpenAI's chat request that the gateway uses (others are accepted and ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str = DEFAULT_MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0, le=10)
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    user: str = Field("", max_length=200)


def sampling_of(state: ServeState, request: Any) -> Sampling:
    """Request sampling parameters over the `serve` settings' defaults; max tokens capped by the settings."""
    settings = state.settings
    max_tokens = getattr(request, "max_completion_tokens", None) or request.max_tokens or settings.max_new_tokens
    if max_tokens > settings.max_new_tokens:
        raise HTTPException(400, f"max_tokens: {max_tokens} exceeds the limit of {settings.max_new_tokens}")

    def pick(name: str) -> Any:
        value = getattr(request, name)
        return getattr(settings, name) if value is None else value

    return Sampling(max_tokens=max_tokens, temperature=pick("temperature"), top_p=pick("top_p"),
                    top_k=pick("top_k"), repetition_penalty=pick("repetition_penalty"))


def check_prompt(state: ServeState, messages: list[Message]) -> None:
    size = sum(len(m["content"]) for m in messages)
    if size > state.settings.max_prompt_chars:
        raise HTTPException(400, f"messages: {size} characters exceed the limit of {state.settings.max_prompt_chars}")


def resolve_route(state: ServeState, model: str, user: str) -> ModelVersion:
    try:
        return route(state.workspace, model, user).version
    except LLMOpsError as exc:
        raise HTTPException(404, str(exc)) from exc


def completion_body(served: Served) -> dict[str, Any]:
    c = served.completion
    return {
        "id": served.id, "object": "chat.completion", "created": served.created, "model": served.model,
        "system_fingerprint": served.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text},
                     "finish_reason": c.finish_reason}],
        "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                  "total_tokens": c.prompt_tokens + c.completion_tokens},
    }


def _chunk(served: Served, delta: dict[str, str], finish: str | None) -> str:
    body = {"id": served.id, "object": "chat.completion.chunk", "created": served.created, "model": served.model,
            "system_fingerprint": served.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def stream_events(served: Served) -> AsyncIterator[str]:
    """The completion as OpenAI chunks: the role, the text word by word, the finish reason, `[DONE]`."""
    yield _chunk(served, {"role": "assistant", "content": ""}, None)
    for piece in re.findall(r"\s*\S+|\s+", served.completion.text):
        yield _chunk(served, {"content": piece}, None)
    yield _chunk(served, {}, served.completion.finish_reason)
    yield "data: [DONE]\n\n"


def chat_routes(state: ServeState) -> APIRouter:
    api = APIRouter()

    @api.get("/v1/models")
    def list_models() -> dict[str, Any]:
        versions = registry.list_versions(state.workspace)
        names = [*registry.aliases(state.workspace), *(v.name for v in versions)]
        return {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "llmops"} for n in names]}

    @api.post("/v1/chat/completions", response_model=None)
    async def chat_completions(
        request: ChatRequest, x_user: str = Header("", max_length=200)
    ) -> JSONResponse | StreamingResponse:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        check_prompt(state, messages)
        sampling = sampling_of(state, request)
        version = resolve_route(state, request.model, request.user or x_user)
        served = await state.complete(version, messages, sampling)
        headers = {"X-LLMOps-Model": served.model, "X-Request-Id": served.id}
        if request.stream:
            return StreamingResponse(stream_events(served), media_type="text/event-stream", headers=headers)
        return JSONResponse(completion_body(served), headers=headers)

    return api
