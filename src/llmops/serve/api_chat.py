"""OpenAI-compatible routes: `GET /v1/models`, `POST /v1/chat/completions` (plain and `stream: true` SSE)."""

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmops.auth import is_admin_token
from llmops.errors import LLMOpsError
from llmops.inference.loading import serving_sampling
from llmops.inference.types import BackendError, Completion, Message, Sampling
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.serve.router import DEFAULT_MODEL, route
from llmops.serve.state import Served, ServeState, Streamed
from llmops.settings import MaxTokens, RepetitionPenalty, Temperature, TopK, TopP


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


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class SamplingFields(BaseModel):
    """The sampling parameters a chat or battle request may set, in the ranges of `llmops.settings` (finite, so no
    NaN or Infinity); an unset one takes the `serve` settings' default."""

    max_tokens: MaxTokens | None = Field(None, description="Tokens to generate, at most `serve.max_new_tokens`.")
    temperature: Temperature | None = Field(None, description="0–2; 0 is greedy decoding.")
    top_p: TopP | None = Field(None, description="Nucleus sampling, in (0, 1].")
    top_k: TopK | None = Field(None, description="Top-k sampling, at most the model's vocabulary; 0 is off.")
    repetition_penalty: RepetitionPenalty | None = Field(None, description="0.01–10; 1 is off.")


class ChatRequest(SamplingFields):
    """The fields of OpenAI's chat request that the gateway uses (others are accepted and ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str = DEFAULT_MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: MaxTokens | None = None
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str = Field("", max_length=200)


def sampling_of(state: ServeState, request: SamplingFields) -> Sampling:
    """Request sampling parameters over the `serve` settings' defaults; max tokens capped by the settings."""
    settings = state.settings
    max_tokens = getattr(request, "max_completion_tokens", None) or request.max_tokens or settings.max_new_tokens
    if max_tokens > settings.max_new_tokens:
        raise HTTPException(400, f"max_tokens: {max_tokens} exceeds the limit of {settings.max_new_tokens}")
    return serving_sampling(settings, max_tokens=max_tokens, temperature=request.temperature, top_p=request.top_p,
                            top_k=request.top_k, repetition_penalty=request.repetition_penalty)


def check_prompt(state: ServeState, messages: list[Message]) -> None:
    size = sum(len(m["content"]) for m in messages)
    if size > state.settings.max_prompt_chars:
        raise HTTPException(400, f"messages: {size} characters exceed the limit of {state.settings.max_prompt_chars}")


def resolve_route(state: ServeState, model: str, user: str, operator: bool = False) -> ModelVersion:
    try:
        return route(state.workspace, model, user, operator=operator).version
    except LLMOpsError as exc:
        raise HTTPException(404, str(exc)) from exc


def usage(completion: Completion) -> dict[str, int]:
    return {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens}


def completion_body(served: Served) -> dict[str, Any]:
    c = served.completion
    return {
        "id": served.id, "object": "chat.completion", "created": served.created, "model": served.model,
        "system_fingerprint": served.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text},
                     "finish_reason": c.finish_reason}],
        "usage": usage(c),
    }


def _event(streamed: Streamed, choices: list[dict[str, Any]], **extra: Any) -> str:
    body = {"id": streamed.id, "object": "chat.completion.chunk", "created": streamed.created,
            "model": streamed.model, "system_fingerprint": streamed.model, "choices": choices, **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _delta(streamed: Streamed, delta: dict[str, str], finish: str | None = None) -> str:
    return _event(streamed, [{"index": 0, "delta": delta, "finish_reason": finish}])


async def stream_events(streamed: Streamed, include_usage: bool) -> AsyncIterator[str]:
    """OpenAI chunks as the text is decoded: the role, each piece, the finish reason, the usage if asked,
    `[DONE]`. A failure after the first piece ends the stream with an error event."""
    yield _delta(streamed, {"role": "assistant", "content": ""})
    try:
        async for chunk in streamed.chunks:
            if chunk.text:
                yield _delta(streamed, {"content": chunk.text})
            if chunk.completion is not None:
                yield _delta(streamed, {}, chunk.completion.finish_reason)
                if include_usage:
                    yield _event(streamed, [], usage=usage(chunk.completion))
    except BackendError as exc:
        error = {"message": str(exc), "type": "server_error", "code": 502}
        yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
        return
    yield "data: [DONE]\n\n"


def chat_routes(state: ServeState) -> APIRouter:
    api = APIRouter()

    @api.get("/v1/models")
    def list_models() -> dict[str, Any]:
        versions = [v for v in registry.list_versions(state.workspace) if registry.servable(state.workspace, v)]
        names = [*registry.aliases(state.workspace), *(v.name for v in versions)]
        return {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "llmops"} for n in names]}

    @api.post("/v1/chat/completions", response_model=None)
    async def chat_completions(
        request: ChatRequest, x_user: str = Header("", max_length=200), authorization: str = Header("")
    ) -> JSONResponse | StreamingResponse:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        check_prompt(state, messages)
        sampling = sampling_of(state, request)
        user = request.user or x_user
        version = resolve_route(state, request.model, user, is_admin_token(state.workspace, authorization))
        if request.stream:
            streamed = await state.stream(version, messages, sampling, user)
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return StreamingResponse(stream_events(streamed, include_usage), media_type="text/event-stream",
                                     headers={"X-LLMOps-Model": streamed.model, "X-Request-Id": streamed.id})
        served = await state.complete(version, messages, sampling, user)
        headers = {"X-LLMOps-Model": served.model, "X-Request-Id": served.id}
        return JSONResponse(completion_body(served), headers=headers)

    return api
