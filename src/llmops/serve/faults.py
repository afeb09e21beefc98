"""A faulty OpenAI-compatible server for rehearsing rollbacks: it forwards to a real backend but fails a share
of the requests (HTTP 500) and adds latency.

Failures are spread evenly, not drawn at random: with `error_rate` 0.2 every 5th request fails, so any
stretch of n requests holds about n × error_rate failures and a rehearsal does not depend on luck.

Register a version with `upstream_url` pointing at it (e.g. run it with `BackgroundServer`), and the
gateway's guardrail metrics see real errors and real latency, without any test hook in the gateway.
"""

import asyncio
import itertools
import math
import time
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from llmops.inference.types import ChatBackend, Sampling


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = ""
    messages: list[dict[str, str]] = Field(min_length=1)
    max_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.1


def create_faulty_upstream(backend: ChatBackend, model: str, *, error_rate: float = 0.0,
                           extra_latency_ms: float = 0.0) -> FastAPI:
    """An app serving `POST /v1/chat/completions` from `backend`'s `model`, failing `error_rate` of requests."""
    if not 0 <= error_rate <= 1 or extra_latency_ms < 0:
        raise ValueError("error_rate must be in [0, 1] and extra_latency_ms >= 0")
    arrivals = itertools.count()
    app = FastAPI(title="llmops faulty upstream")

    @app.post("/v1/chat/completions")
    async def chat(request: _Request) -> dict[str, Any]:
        await asyncio.sleep(extra_latency_ms / 1000)
        index = next(arrivals)
        if math.floor((index + 1) * error_rate) > math.floor(index * error_rate):
            raise HTTPException(500, "injected failure")
        sampling = Sampling(request.max_tokens, request.temperature, request.top_p, request.top_k,
                            request.repetition_penalty)
        completion = await backend.complete(model, request.messages, sampling)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                                         "finish_reason": completion.finish_reason}],
            "usage": {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                      "total_tokens": completion.prompt_tokens + completion.completion_tokens},
        }

    return app
