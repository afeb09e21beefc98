"""The upstream client against misbehaving servers on 127.0.0.1: a server that drops a fresh connection gets the
request once, a plain request answered with a stream is collected, sessions of finished event loops are closed, and
a gateway shutting down logs the streams the server cancelled, and a stalled upstream times out after
`serve.upstream_timeout_s`."""

import asyncio
import gc
import json
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from llmops import db
from llmops.inference.types import BackendError, Sampling
from llmops.inference.upstream import UpstreamBackend
from llmops.models import registry
from llmops.models.metrics import version_metrics
from llmops.serve.gateway import create_app
from llmops.serve.state import ServeState
from llmops.workspace import Workspace, init_workspace

MESSAGES = [{"role": "user", "content": "Can I return the desk lamp?"}]
SAMPLING = Sampling(max_tokens=8, temperature=0.0)
Answer = Callable[[asyncio.StreamWriter, dict[str, object]], Awaitable[bool]]  # False: close the connection


def _event(text: str) -> bytes:
    return f"data: {json.dumps({'choices': [{'delta': {'content': text}, 'finish_reason': None}]})}\n\n".encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


async def _request(reader: asyncio.StreamReader) -> dict[str, object] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    return dict(json.loads(await reader.readexactly(length)))


async def _server(answer: Answer, bodies: list[dict[str, object]]) -> tuple[asyncio.Server, str]:
    """A server on a free port answering each request of a connection with `answer`, its bodies in `bodies`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (body := await _request(reader)) is not None:
                bodies.append(body)
                if not await answer(writer, body):
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


async def _drop(_: asyncio.StreamWriter, __: dict[str, object]) -> bool:
    return False


async def _json(writer: asyncio.StreamWriter, _: dict[str, object]) -> bool:
    body = json.dumps({"choices": [{"message": {"content": "kept"}, "finish_reason": "stop"}]}).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    return True


async def _stream(writer: asyncio.StreamWriter, _: dict[str, object]) -> bool:
    writer.write(SSE_HEAD + _chunk(_event("stre") + _event("amed")) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    await writer.drain()
    return False


async def _trickle(writer: asyncio.StreamWriter, _: dict[str, object]) -> bool:
    writer.write(SSE_HEAD)
    for index in range(1000):
        writer.write(_chunk(_event(f"piece {index} ")))
        await writer.drain()
        await asyncio.sleep(0.05)
    return False


def test_a_server_that_drops_a_new_connection_gets_the_request_once() -> None:
    """Only a kept-alive connection is retried: a server dropping a fresh one (crashing on the prompt) has answered."""
    bodies: list[dict[str, object]] = []

    async def calls() -> list[str]:
        server, url = await _server(_drop, bodies)
        backend = UpstreamBackend(url)
        errors = []
        try:
            for stream in (False, True):
                with pytest.raises(BackendError, match="ServerDisconnectedError") as caught:
                    if stream:
                        [chunk async for chunk in backend.stream("chat-v1.0", MESSAGES, SAMPLING)]
                    else:
                        await backend.complete("chat-v1.0", MESSAGES, SAMPLING)
                errors.append(str(caught.value))
        finally:
            await backend.aclose()
            server.close()
        return errors

    assert len(asyncio.run(calls())) == 2
    assert len(bodies) == 2  # one a request


def test_a_plain_request_answered_with_a_stream_is_collected() -> None:
    async def call() -> str:
        server, url = await _server(_stream, [])
        backend = UpstreamBackend(url)
        try:
            return (await backend.complete("chat-v1.0", MESSAGES, SAMPLING)).text
        finally:
            await backend.aclose()
            server.close()

    assert asyncio.run(call()) == "streamed"


@contextmanager
def _threaded_server(answer: Answer, bodies: list[dict[str, object]]) -> Iterator[str]:
    """`_server` in an event loop of its own thread, for clients that run several loops one after the other."""
    loop = asyncio.new_event_loop()
    server, url = loop.run_until_complete(_server(answer, bodies))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def test_the_session_of_a_finished_event_loop_is_closed() -> None:
    """A backend used by several `asyncio.run`s closes the session of the loop before, so nothing warns of it."""
    bodies: list[dict[str, object]] = []
    with _threaded_server(_json, bodies) as url, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = UpstreamBackend(url)
        texts = [asyncio.run(backend.complete("chat-v1.0", MESSAGES, SAMPLING)).text for _ in range(3)]
        asyncio.run(backend.aclose())
        gc.collect()
    assert texts == ["kept"] * 3 and len(bodies) == 3
    assert not [w for w in caught if str(w.message).startswith(("Unclosed client session", "Unclosed connector"))]


async def _stream_then_shut_down(state: ServeState, url: str, workspace: Workspace) -> None:
    """A stream cancelled in flight (as uvicorn cancels the requests still open at the end of its grace period), and
    the state closed right after, without waiting for the request's task (as uvicorn does)."""
    version = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="unused",
                                        path="unused", merged=True, upstream_url=url)
    pieces = asyncio.Queue[str]()

    async def relay() -> None:
        streamed = await state.stream(version, MESSAGES, SAMPLING)
        async for chunk in streamed.chunks:
            pieces.put_nowait(chunk.text)

    request = asyncio.create_task(relay())
    for _ in range(3):
        await pieces.get()
    request.cancel()
    await state.close()
    with pytest.raises(asyncio.CancelledError):
        await request


def test_a_stream_cut_at_shutdown_is_logged(workspace: Workspace) -> None:
    app = create_app(workspace)
    state = app.state.serve

    async def run() -> None:
        server, url = await _server(_trickle, [])
        try:
            await _stream_then_shut_down(state, url, workspace)
        finally:
            server.close()

    try:
        asyncio.run(run())
    finally:
        state.engine.close()
    with workspace.engine.connect() as conn:
        rows = conn.execute(sa.select(db.requests.c.ok, db.requests.c.error, db.requests.c.answer)).all()
    assert len(rows) == 1
    ok, error, answer = rows[0]
    assert ok and error == "the client went away" and answer.startswith("piece 0 piece 1 ")


async def _silent(_: asyncio.StreamWriter, __: dict[str, object]) -> bool:
    await asyncio.sleep(3600)
    return False


def test_a_stalled_upstream_times_out_after_the_serve_setting(tmp_path: Path) -> None:
    """`serve.upstream_timeout_s` bounds the wait for an upstream that never answers: a 502 counted as an error."""
    workspace = init_workspace(tmp_path / "ws", overrides=["serve.upstream_timeout_s=0.5"])

    async def calls() -> tuple[str, list[httpx.Response]]:
        server, url = await _server(_silent, [])
        version = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="unused",
                                            path="unused", merged=True, upstream_url=url)
        app = create_app(workspace)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
                body = {"model": version.name, "messages": MESSAGES}
                return version.name, [await asyncio.wait_for(client.post(
                    "/v1/chat/completions", json={**body, "stream": stream}), 30) for stream in (False, True)]
        finally:
            server.close()

    name, responses = asyncio.run(calls())
    assert [r.status_code for r in responses] == [502, 502]
    assert all("SocketTimeoutError" in r.json()["error"]["message"] for r in responses)
    assert version_metrics(workspace, name).errors == 2
