"""The upstream client's connections: a kept-alive connection the server dropped without saying so (llama-server
does after a stream) costs the next request nothing, and the body asks for the engine's repetition penalty under
every name servers read."""

import asyncio
import json

from llmops.inference.types import Sampling
from llmops.inference.upstream import PENALTY_WINDOW, UpstreamBackend

MESSAGES = [{"role": "user", "content": "Can I return the desk lamp?"}]


def _reply(text: str) -> bytes:
    body = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 2}}).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _read_request(reader: asyncio.StreamReader) -> dict[str, object] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    return dict(json.loads(await reader.readexactly(length)))


async def _served(bodies: list[dict[str, object]]) -> list[str]:
    """Two completions from a server that answers only the first request of each connection (kept alive, as far as
    the client can tell) and drops the connection when a second one arrives on it."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        body = await _read_request(reader)
        if body is not None:
            bodies.append(body)
            writer.write(_reply(f"answer {len(bodies)}"))
            await writer.drain()
            await _read_request(reader)  # the next request on this connection is never answered
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = UpstreamBackend(f"http://127.0.0.1:{port}/v1")
    try:
        sampling = Sampling(max_tokens=8, temperature=0.0)
        texts = [(await backend.complete("chat-v1.0", MESSAGES, sampling)).text for _ in range(2)]
    finally:
        await backend.aclose()
        server.close()
    assert connections >= 2
    return texts


def test_a_dropped_kept_alive_connection_is_retried_on_a_new_one() -> None:
    bodies: list[dict[str, object]] = []
    assert asyncio.run(_served(bodies)) == ["answer 1", "answer 2"]
    assert len(bodies) == 2  # each request reached the server once


def test_the_body_carries_the_penalty_for_every_server() -> None:
    bodies: list[dict[str, object]] = []
    asyncio.run(_served(bodies))
    body = bodies[0]
    assert body["repetition_penalty"] == body["repeat_penalty"] == Sampling().repetition_penalty
    assert body["repeat_last_n"] == PENALTY_WINDOW and body["model"] == "chat-v1.0"
