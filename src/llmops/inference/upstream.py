"""A backend that forwards to an OpenAI-compatible server (vLLM, SGLang, `llamafactory-cli api`) by URL.

A version registered with an `upstream_url` is served by that server: the gateway sends the chat request
to `<url>/v1/chat/completions` with the version's name as `model` (vLLM answers only to the names it serves,
`--lora-modules NAME=PATH` or `--served-model-name NAME`; `llamafactory-cli api` ignores it). `top_k` and
`repetition_penalty` travel as the extra fields vLLM and SGLang accept; servers ignore fields they do not know.
`api_key` (from the gateway's `serve.upstream_api_key_env`) is sent as the bearer token. Streams are relayed piece
by piece (a server that answers a stream request with one JSON completion is relayed as one piece); a stream without
a usage event (LLaMA-Factory's) counts its pieces as the completion tokens and 0 prompt tokens. An answer 400, 413
or 422 refuses the request's own content (a prompt too long for the server, say): a ClientError, HTTP 400 at the
gateway and not a failure of the version. Any transport error, other non-2xx answer (401, 404, 429, 5xx: the server
or its set-up, not the client) or malformed reply is a BackendError (HTTP 502, or an error event once a stream has
begun).
"""

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

from llmops.inference.types import BackendError, ChatBackend, Chunk, ClientError, Completion, Message, Sampling

__all__ = ["ChatBackend", "UpstreamBackend"]
CLIENT_STATUSES = frozenset({400, 413, 422})  # an upstream's answers that refuse the request itself


class UpstreamBackend:
    """ChatBackend of one upstream server."""

    def __init__(self, url: str, *, api_key: str = "", timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[: -len("/v1")]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout_s)

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        try:
            response = await self._client.post("/v1/chat/completions", json=_body(model, messages, sampling))
        except httpx.HTTPError as exc:
            raise BackendError(f"upstream {self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise _refusal(self.url, response.status_code, response.text)
        return _parse(self.url, response.content)

    async def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk, None]:
        body = {**_body(model, messages, sampling), "stream": True, "stream_options": {"include_usage": True}}
        try:
            async with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 300:
                    text = (await response.aread()).decode(errors="replace")
                    raise _refusal(self.url, response.status_code, text)
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    completion = _parse(self.url, await response.aread())
                    yield Chunk(completion.text)
                    yield Chunk("", completion)
                    return
                async for chunk in _relay(self.url, response.aiter_lines()):
                    yield chunk
        except httpx.HTTPError as exc:
            raise BackendError(f"upstream {self.url}: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


def _refusal(url: str, status: int, text: str) -> Exception:
    message = f"upstream {url}: HTTP {status}: {text[:200]}"
    return ClientError(message) if status in CLIENT_STATUSES else BackendError(message)


def _body(model: str, messages: list[Message], sampling: Sampling) -> dict[str, Any]:
    """The request body; the repetition penalty under both names servers read (vLLM and LLaMA-Factory
    `repetition_penalty`, llama.cpp's llama-server `repeat_penalty`), so every upstream samples as the engine."""
    return {"model": model, "messages": messages, "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
            "repetition_penalty": sampling.repetition_penalty, "repeat_penalty": sampling.repetition_penalty,
            "stream": False}


async def _relay(url: str, lines: AsyncIterator[str]) -> AsyncIterator[Chunk]:
    """OpenAI stream events → text chunks, then the completion (usage from the server's usage event, if any)."""
    parts: list[str] = []
    finish = "stop"
    usage: dict[str, Any] = {}
    async for line in lines:
        if not line.startswith("data:") or (data := line[5:].strip()) == "[DONE]":
            continue
        try:
            event = json.loads(data)
            if "error" in event:
                raise BackendError(f"upstream {url}: {str(event['error'])[:200]}")
            usage = event.get("usage") or usage
            for choice in event.get("choices") or []:
                finish = choice.get("finish_reason") or finish
                if piece := (choice.get("delta") or {}).get("content") or "":
                    parts.append(piece)
                    yield Chunk(piece)
        except (ValueError, AttributeError, TypeError) as exc:
            raise BackendError(f"upstream {url}: not an OpenAI stream event: {data[:200]}") from exc
    completion = Completion(text="".join(parts), prompt_tokens=int(usage.get("prompt_tokens", 0)),
                            completion_tokens=int(usage.get("completion_tokens", len(parts))), finish_reason=finish)
    yield Chunk("", completion)


def _parse(url: str, content: bytes) -> Completion:
    try:
        data = json.loads(content)
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Completion(
            text=str(choice["message"]["content"] or ""),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackendError(f"upstream {url}: not an OpenAI chat completion: {exc}") from exc
