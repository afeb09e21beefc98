"""Security: no client can hang the gateway. Cancelled or failing callers never kill a background worker; a worker
that dies anyway is reported by /health and stops the server with a non-zero exit; slow bodies get 408."""

import asyncio
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Connection, func, select

from fakes import Echo
from llmops import cli, db
from llmops.inference.decoding import Base, Row
from llmops.inference.engine import InferenceModel
from llmops.inference.scheduler import ContinuousBatcher
from llmops.inference.types import Chunk, Completion, Message, Sampling
from llmops.inference.workers import WorkerDied
from llmops.models import registry
from llmops.models.metrics import version_metrics
from llmops.serve import gateway
from llmops.serve.arena import insert_battle, new_battle
from llmops.serve.batching import DynamicBatcher
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer, free_port
from llmops.serve.state import ServeState
from llmops.serve.store import GroupWriter
from llmops.ui.gateway_client import GatewayClient
from llmops.workspace import Workspace, open_workspace

PIECES = 20


class Crash(BaseException):
    """What no worker loop catches (like SystemExit from a bad write): it ends the worker's thread."""


def crash(*_: Any) -> Any:
    raise Crash("injected")


class Slow:
    """A ChatBackend that streams PIECES pieces, 20 ms apart."""

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        return Completion(f"{model}: slow", 1, 2, "stop")

    async def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk]:
        for i in range(PIECES):
            yield Chunk(f"piece{i} ")
            await asyncio.sleep(0.02)
        yield Chunk("", Completion("".join(f"piece{i} " for i in range(PIECES)), 1, PIECES, "stop"))


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def async_wait_for(condition: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _insert(i: int) -> Callable[[Connection], object]:
    row = {"id": f"r{i}", "model": "m", "created_at": 1.0, "latency_ms": 1.0, "completion_tokens": 1, "ok": True,
           "error": ""}
    return lambda conn: conn.execute(db.requests.insert().values(**row))


def _count(workspace: Workspace, *where: Any) -> int:
    with workspace.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(db.requests).where(*where)).scalar_one())


def test_writer_commits_a_cancelled_write_and_keeps_going(workspace: Workspace) -> None:
    writer = GroupWriter(workspace.engine)
    gate = threading.Event()
    blocker = writer.submit(lambda conn: gate.wait(10))
    cancelled = writer.submit(_insert(1))
    assert cancelled.cancel()  # its caller went away while it was queued
    gate.set()
    blocker.result(10)
    writer.submit(_insert(2)).result(10)
    assert writer.health().alive
    writer.close()
    assert _count(workspace) == 2  # the cancelled write was committed all the same


def test_batcher_skips_cancelled_items_and_survives_a_failing_batch() -> None:
    ran: list[int] = []
    gate = threading.Event()

    def run(items: Sequence[int]) -> list[int]:
        gate.wait(10)
        if -1 in items:
            raise ValueError("bad batch")
        ran.extend(items)
        return [i * 10 for i in items]

    batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch_size=8, wait_ms=0, name="test")
    first = batcher.submit(1)
    wait_for(lambda: batcher.batches == 1, "the first batch to start")
    queued = [batcher.submit(i) for i in (2, 3, 4)]
    assert queued[1].cancel()
    gate.set()
    assert first.result(10) == 10 and queued[0].result(10) == 20 and queued[2].result(10) == 40
    assert 3 not in ran  # a request cancelled before its batch ran is left out
    with pytest.raises(ValueError, match="bad batch"):
        batcher.submit(-1).result(10)
    assert batcher.submit(5).result(10) == 50
    assert batcher.health().alive
    batcher.close()


def test_a_dead_batcher_answers_everyone_and_refuses_new_work() -> None:
    gate = threading.Event()

    def run(items: Sequence[int]) -> list[int]:
        gate.wait(10)
        raise Crash("injected")

    batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch_size=1, wait_ms=0, name="llmops-votes")
    running = batcher.submit(1)
    wait_for(lambda: batcher.batches == 1, "the batch to start")
    queued = batcher.submit(2)
    gate.set()
    for future in (running, queued):
        with pytest.raises(WorkerDied, match="llmops-votes died"):
            future.result(10)
    health = batcher.health()
    assert not health.alive and "Crash: injected" in health.failure
    with pytest.raises(WorkerDied):
        batcher.submit(3)
    batcher.close()  # returns: nothing waits on a dead thread


def test_a_dead_writer_fails_its_queue_and_closes(workspace: Workspace) -> None:
    writer = GroupWriter(workspace.engine, max_batch=1)
    gate = threading.Event()
    dying = writer.submit(lambda conn: gate.wait(10) and crash())
    queued = writer.submit(_insert(1))
    gate.set()
    for future in (dying, queued):
        with pytest.raises(WorkerDied, match="llmops-writer died"):
            future.result(10)
    assert not writer.health().alive
    with pytest.raises(WorkerDied):
        writer.submit(_insert(2))
    writer.close()


def test_a_dead_decoder_answers_its_requests_and_refuses_new_ones() -> None:
    decoder = ContinuousBatcher(max_batch_size=4, wait_ms=0)
    answers: list[Completion | BaseException] = []
    row = Row(prompt_ids=[1], model="m", sampling=Sampling(), done=answers.append, cancelled=crash)
    base = cast(Base, object())  # never reached: the row's own callback ends the worker first
    decoder.submit(base, row)
    wait_for(lambda: answers, "the row's answer")
    assert isinstance(answers[0], WorkerDied) and not decoder.health().alive
    with pytest.raises(WorkerDied, match="llmops-decoder died"):
        decoder.submit(base, Row(prompt_ids=[1], model="m", sampling=Sampling(), done=answers.append))
    decoder.close()


def _gateway(workspace: Workspace, backend: Any, overrides: Sequence[str] = ()) -> FastAPI:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    registry.set_alias(workspace, "candidate", "chat-v2.0")
    ws = open_workspace(workspace.root, list(overrides))
    return create_app(ws, backends={"chat-v1.0": backend, "chat-v2.0": backend})


def _battles(workspace: Workspace, n: int) -> list[str]:
    battles = [new_battle("q", "u", ("chat-v1.0", "chat-v2.0"), ("x", "y"), {}) for _ in range(n)]
    with workspace.engine.begin() as conn:
        for battle in battles:
            insert_battle(conn, battle)
    return [battle.id for battle in battles]


def _voted(workspace: Workspace, battle_id: str) -> bool:
    with workspace.engine.connect() as conn:
        return conn.execute(select(db.battles.c.vote).where(db.battles.c.id == battle_id)).scalar() is not None


@pytest.mark.anyio
async def test_a_cancelled_ui_vote_leaves_the_vote_worker_alive(workspace: Workspace) -> None:
    app = _gateway(workspace, Echo())
    state: ServeState = app.state.serve
    client = GatewayClient(app, workspace.admin_token)
    running_id, queued_id, later_id = _battles(workspace, 3)
    lock = sqlite3.connect(str(workspace.engine.url.database), isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # holds the database: the first vote's batch waits inside its run
    async with app.router.lifespan_context(app):
        running = asyncio.create_task(client.vote(running_id, "a"))
        await async_wait_for(lambda: state.votes.batches == 1, "the first vote's batch to start")
        queued = asyncio.create_task(client.vote(queued_id, "b"))
        await async_wait_for(lambda: state.votes.health().queued == 1, "the second vote to queue")
        for task in (running, queued):  # the UI gave up on both votes
            task.cancel()
        await asyncio.gather(running, queued, return_exceptions=True)
        lock.execute("ROLLBACK")
        assert (await client.vote(later_id, "tie"))["vote"] == "tie"
        assert state.votes.health().alive
    lock.close()
    assert _voted(workspace, running_id)  # it was being recorded when cancelled: it stands
    assert not _voted(workspace, queued_id)  # cancelled before its batch ran: not recorded


def _stream_request(port: int) -> bytes:
    body = b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}'
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _abort_after_first_chunk(port: int, marker: bytes = b"piece0") -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_stream_request(port))
        received = b""
        while marker not in received:
            data = sock.recv(65536)
            assert data, "the stream ended before its first piece"
            received += data


def test_a_gateway_whose_clients_abort_their_streams_still_answers(workspace: Workspace) -> None:
    app = _gateway(workspace, Slow())
    state: ServeState = app.state.serve
    auth = {"Authorization": f"Bearer {workspace.admin_token()}"}
    battle_id = _battles(workspace, 1)[0]
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(_abort_after_first_chunk, [server.port] * 100))
        plain = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert plain.status_code == 200
        with http.stream("POST", "/v1/chat/completions",
                         json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as streamed:
            assert streamed.status_code == 200 and "[DONE]" in streamed.read().decode()
        assert http.post(f"/v1/arena/battles/{battle_id}/vote", json={"vote": "a"}, headers=auth).status_code == 200
        feedback = http.post("/v1/feedback", json={"completion_id": plain.json()["id"], "score": "up"}, headers=auth)
        assert feedback.status_code == 200
        health = http.get("/health")
        assert health.status_code == 200 and all(w["alive"] for w in health.json()["workers"].values())
        wait_for(lambda: _count(workspace, db.requests.c.error == "the client went away") == 100,
                 "the aborted streams' request rows")
    with pytest.raises(RuntimeError, match="closed"):  # the server shut down all the way
        state.writer.submit(_insert(0))
    aborted = db.requests.c.error == "the client went away"
    assert _count(workspace, aborted, db.requests.c.ok.is_(True), db.requests.c.completion_tokens >= 1) == 100
    metrics = version_metrics(workspace, "chat-v1.0")
    assert metrics.requests == 102 and metrics.errors == 0  # a client that left is not the version's failure


@pytest.mark.integration
def test_the_decoder_survives_aborted_streams(workspace: Workspace, tiny_model_dir: Path) -> None:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=str(tiny_model_dir),
                              path=str(tiny_model_dir), merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    ws = open_workspace(workspace.root, ["serve.temperature=1.0", "serve.max_new_tokens=64"])
    engine = InferenceModel(max_batch_size=8)
    with BackgroundServer(create_app(ws, engine=engine)) as server:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda port: _abort_after_first_chunk(port, b"data:"), [server.port] * 30))
        wait_for(lambda: engine.batcher.in_flight() == 0, "the aborted rows to leave the batch")
        reply = httpx.post(f"{server.url}/v1/chat/completions", timeout=60,
                           json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert reply.status_code == 200 and engine.batcher.health().alive
    engine.close()


@pytest.mark.anyio
async def test_a_dead_worker_is_reported_and_refuses_work(workspace: Workspace) -> None:
    app = _gateway(workspace, Echo())
    state: ServeState = app.state.serve
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://g") as http:
        assert (await http.get("/health")).status_code == 200
        state.writer.submit(crash)
        await async_wait_for(lambda: not state.writer.health().alive, "the writer to die")
        health = await http.get("/health")
        assert health.status_code == 503
        workers = health.json()["workers"]
        assert not workers["llmops-writer"]["alive"] and workers["llmops-votes"]["alive"]
        chat = await http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 503 and "llmops-writer died" in chat.json()["error"]["message"]
        await async_wait_for(lambda: state.failure, "the watchdog", timeout_s=10)
        assert "worker llmops-writer died (Crash: injected)" in state.failure
    # leaving the lifespan closed the state: a dead writer did not hold up the shutdown


def test_a_dead_worker_stops_the_server(workspace: Workspace) -> None:
    app = _gateway(workspace, Echo())
    server = BackgroundServer(app).start()
    try:
        app.state.serve.writer.submit(crash)

        def refused() -> bool:
            try:
                httpx.get(f"{server.url}/health", timeout=5)
            except httpx.TransportError:
                return True
            return False

        wait_for(refused, "the server to stop by itself")
        assert "llmops-writer" in app.state.serve.failure
    finally:
        server.stop()


@pytest.mark.parametrize("command", [["serve"], ["ui", "--no-browser"]])
def test_the_commands_exit_non_zero_naming_the_dead_worker(
    command: list[str], workspace: Workspace, monkeypatch: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    def dying_app(ws: Workspace) -> FastAPI:
        app = create_app(ws)
        app.state.serve.writer.submit(crash)
        return app

    monkeypatch.setattr(gateway, "create_app", dying_app)  # `serve` and `ui` import it when they run
    monkeypatch.setattr(uvicorn.Config, "configure_logging", lambda _: None)
    monkeypatch.setattr(sys, "argv", ["llmops", *command, "-w", str(workspace.root), "--port", str(free_port())])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    assert "gateway stopped: worker llmops-writer died" in capsys.readouterr().out


def _send_slowly(port: int, pieces: list[bytes], gap_s: float) -> bytes:
    """Send `pieces` `gap_s` apart until the server answers; the answer (read to its end)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for piece in pieces:
            sock.sendall(piece)
            sock.settimeout(gap_s)
            try:
                first = sock.recv(65536)
                break
            except TimeoutError:
                continue
        else:
            sock.settimeout(30)
            first = sock.recv(65536)
        sock.settimeout(30)
        answer = first
        while data := sock.recv(65536):
            answer += data
    return answer


def test_slow_and_truncated_bodies_get_408(workspace: Workspace) -> None:
    app = _gateway(workspace, Echo(), ["serve.body_timeout_s=0.5"])
    body = b'{"messages": [{"role": "user", "content": "' + b"x" * 200 + b'"}]}'
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with BackgroundServer(app) as server:
        dribbled = _send_slowly(server.port, [head, *(body[i:i + 1] for i in range(len(body)))], 0.1)
        truncated = _send_slowly(server.port, [head + body[:20]], 5.0)
        for answer in (dribbled, truncated):
            assert answer.startswith(b"HTTP/1.1 408")
            assert b'"code":408' in answer and b"request body: not received within 0.5 s" in answer
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(head + body[:20])  # and leaves mid-body
        assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
        whole = httpx.post(f"{server.url}/v1/chat/completions", content=body,
                           headers={"Content-Type": "application/json"}, timeout=30)
        assert whole.status_code == 200
    with pytest.raises(RuntimeError, match="closed"):
        app.state.serve.writer.submit(_insert(0))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

