"""A backend that forwards to an OpenAI-compatible server (vLLM, SGLang, `llamafactory-cli api`) by URL.

A version registered with an `upstream_url` is served by that server: the gateway sends the chat request to
`<url>/v1/chat/completions` with the version's name as `model` (vLLM answers only to the names it serves,
`--lora-modules NAME=PATH` or `--served-model-name NAME`; `llamafactory-cli api` ignores it). `top_k` and
`repetition_penalty` travel as the extra fields vLLM and SGLang accept; servers ignore fields they do not know.
`api_key` (from the gateway's `serve.upstream_api_key_env`) is sent as the bearer token. Streams are relayed piece by
piece (a server that answers a stream request with one JSON completion is relayed as one piece, and a stream answering a
plain request is collected); a stream without a usage event (LLaMA-Factory's) counts its pieces as the completion tokens
and 0 prompt tokens. An answer 400, 413 or 422 refuses the request's own content (a prompt too long for the server,
say): a ClientError, HTTP 400 at the gateway and not a failure of the version. Any transport error, other non-2xx answer
(401, 404, 429, 5xx: the server or its set-up, not the client) or malformed reply is a BackendError (HTTP 502, or an
error event once a stream has begun). The client is aiohttp's (about a tenth of httpx's CPU per request with 32 in
flight, which a gateway in front of a fast server spends on every request: `benchmarks/serve_peers.py`), one session per
event loop (a later loop's closes the one before), kept-alive connections for every request in flight; only a kept-alive
connection's failure is retried (a new connection's is the server's answer: one that dies on a prompt gets it once).
"""

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import aiohttp

from llmops.inference.types import BackendError, ChatBackend, Chunk, ClientError, Completion, Message, Sampling

__all__ = ["ChatBackend", "UpstreamBackend"]
CLIENT_STATUSES = frozenset({400, 413, 422})  # an upstream's answers that refuse the request itself
# llama-server's `repeat_last_n`: the whole context of most models, as the engine penalises every token seen (its own
# "whole context", -1, is refused by llama-server's request schema)
PENALTY_WINDOW = 32768
MAX_CONNECTIONS = 256  # to one upstream; more requests in flight wait for a free one
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, UnicodeDecodeError)


class UpstreamBackend:
    """ChatBackend of one upstream server."""

    def __init__(self, url: str, *, api_key: str = "", timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[: -len("/v1")]
        self._endpoint = f"{self.url}/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # like httpx's timeout: each connect and each read may take `timeout_s`, a long stream as long as it goes on
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the session's

    async def _client(self) -> aiohttp.ClientSession:
        """The session of the running event loop (one made in another loop is closed, and a new one made)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            await self.aclose()
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0)
            trace = aiohttp.TraceConfig()
            trace.on_connection_reuseconn.append(_mark_reused)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers, timeout=self._timeout,
                                                  trace_configs=[trace])
            self._loop = loop
        return self._session

    @asynccontextmanager
    async def _post(self, body: dict[str, Any], headers: dict[str, str] | None = None
                    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response to POSTing `body`, its headers read. A kept-alive connection the server has closed meanwhile
        (llama-server closes one after a stream without saying so) fails before the request reaches the server:
        that is retried once, on a new connection."""
        for attempt in range(2):
            connection = {"reused": False}  # set by `_mark_reused`
            try:
                response = await (await self._client()).post(self._endpoint, json=body, headers=headers,
                                                              trace_request_ctx=connection)
                break
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt or not connection["reused"]:  # a new connection's failure is the server's answer
                    raise
        async with response:
            yield response

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        try:
            async with self._post(_body(model, messages, sampling)) as response:
                if response.status < 300 and response.content_type == "text/event-stream":
                    return await _collected(self.url, _lines(response.content))
                content = await response.read()
        except UPSTREAM_ERRORS as exc:
            raise BackendError(f"upstream {self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status >= 300:
            raise _refusal(self.url, response.status, content.decode(errors="replace"))
        return _parse(self.url, content)

    async def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk, None]:
        body = {**_body(model, messages, sampling), "stream": True, "stream_options": {"include_usage": True}}
        try:
            async with self._post(body, {"Connection": "close"}) as response:  # a stream's connection is not reused
                if response.status >= 300:
                    text = (await response.read()).decode(errors="replace")
                    raise _refusal(self.url, response.status, text)
                if not response.content_type.startswith("text/event-stream"):
                    completion = _parse(self.url, await response.read())
                    yield Chunk(completion.text)
                    yield Chunk("", completion)
                    return
                async for chunk in _relay(self.url, _lines(response.content)):
                    yield chunk
        except UPSTREAM_ERRORS as exc:
            raise BackendError(f"upstream {self.url}: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the session: here if it is the running loop's or its loop is closed, else in its own loop."""
        session, loop, self._session, self._loop = self._session, self._loop, None, None
        if session is None or session.closed:
            return
        if loop is not None and not loop.is_closed() and loop is not asyncio.get_running_loop():
            asyncio.run_coroutine_threadsafe(session.close(), loop)
            return
        await session.close()


async def _mark_reused(_: aiohttp.ClientSession, context: SimpleNamespace, __: object) -> None:
    """Trace hook: the request is sent on a kept-alive connection (`trace_request_ctx` is `_post`'s dict)."""
    context.trace_request_ctx["reused"] = True


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The body's lines as they arrive, of any length (aiohttp's own line reader refuses lines over 128 KiB)."""
    pending = b""
    async for data in content.iter_any():
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            yield line.decode().rstrip("\r")
    if pending:
        yield pending.decode()


def _refusal(url: str, status: int, text: str) -> Exception:
    message = f"upstream {url}: HTTP {status}: {text[:200]}"
    return ClientError(message) if status in CLIENT_STATUSES else BackendError(message)


def _body(model: str, messages: list[Message], sampling: Sampling) -> dict[str, Any]:
    """The request body; the repetition penalty under both names servers read (vLLM and LLaMA-Factory
    `repetition_penalty`, llama.cpp's llama-server `repeat_penalty` over `PENALTY_WINDOW` tokens rather than its
    default of the last 64), so every upstream samples as the engine."""
    return {"model": model, "messages": messages, "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
            "repetition_penalty": sampling.repetition_penalty, "repeat_penalty": sampling.repetition_penalty,
            "repeat_last_n": PENALTY_WINDOW, "stream": False}


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


async def _collected(url: str, lines: AsyncIterator[str]) -> Completion:
    """The completion of a stream (`_relay`'s last chunk carries it)."""
    return [chunk.completion async for chunk in _relay(url, lines) if chunk.completion][-1]


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
