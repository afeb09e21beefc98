"""A backend that forwards to an OpenAI-compatible server (vLLM, SGLang, `llamafactory-cli api`) by URL.

A version registered with an `upstream_url` is served by that server: the gateway sends the chat request
to `<url>/v1/chat/completions` with the version's name as `model` (vLLM `--enable-lora` serves adapters by
name; servers of a single model ignore it). `top_k` and `repetition_penalty` travel as the extra fields
vLLM and SGLang accept. Any transport error or non-2xx answer is a BackendError (HTTP 502 at the gateway).
"""

from typing import Any

import httpx

from llmops.serve.types import BackendError, ChatBackend, Completion, Message, Sampling

__all__ = ["ChatBackend", "UpstreamBackend"]


class UpstreamBackend:
    """ChatBackend of one upstream server."""

    def __init__(self, url: str, *, api_key: str = "", timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        if self.url.endswith("/v1"):
            self.url = self.url[: -len("/v1")]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout_s)

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        body: dict[str, Any] = {
            "model": model, "messages": messages, "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k,
            "repetition_penalty": sampling.repetition_penalty, "stream": False,
        }
        try:
            response = await self._client.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise BackendError(f"upstream {self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise BackendError(f"upstream {self.url}: HTTP {response.status_code}: {response.text[:200]}")
        return _parse(self.url, response)

    async def aclose(self) -> None:
        await self._client.aclose()


def _parse(url: str, response: httpx.Response) -> Completion:
    try:
        data = response.json()
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
