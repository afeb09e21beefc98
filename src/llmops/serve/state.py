"""What one gateway process holds: the workspace, the embedded engine, upstream backends, writers, metrics."""

import asyncio
import os
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from llmops import db
from llmops.auth import SignInLimiter
from llmops.data.preferences import PreferenceCollector
from llmops.inference.engine import InferenceModel
from llmops.inference.loading import load_version
from llmops.inference.types import BackendError, ChatBackend, Chunk, ClientError, Completion, Message, Sampling
from llmops.inference.upstream import UpstreamBackend
from llmops.inference.workers import WorkerHealth
from llmops.models.registry import ModelVersion
from llmops.serve.arena import VoteRequest, VoteResult, record_votes
from llmops.serve.batching import DynamicBatcher
from llmops.serve.metrics import GatewayMetrics
from llmops.serve.store import GroupWriter
from llmops.workspace import Workspace

RELAY_CLOSE_S = 5.0  # at shutdown, how long the streams cancelled by the server get to log their requests


@dataclass(frozen=True)
class Served:
    id: str
    model: str
    completion: Completion
    created: int


@dataclass(frozen=True)
class Streamed:
    """A completion being streamed: `chunks` ends with the one carrying the completion, or raises."""

    id: str
    model: str
    created: int
    chunks: AsyncIterator[Chunk]


@dataclass
class ServeState:
    workspace: Workspace
    engine: InferenceModel
    backends: dict[str, ChatBackend] = field(default_factory=dict)  # version name → backend (injected/upstream)
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    writer: GroupWriter = field(init=False)
    votes: DynamicBatcher[VoteRequest, VoteResult] = field(init=False)
    sign_ins: SignInLimiter = field(init=False)  # failed password sign-ins: the UI's login and HTTP Basic
    failure: str = ""  # set by the watchdog (serve/health.py) once a worker died: the server then stops
    _load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _relays: set["asyncio.Future[None]"] = field(default_factory=set)  # one per stream not yet logged

    def __post_init__(self) -> None:
        self.writer = GroupWriter(self.workspace.engine)
        collector = PreferenceCollector(self.workspace)
        self.votes = DynamicBatcher(lambda batch: record_votes(self.workspace, collector, batch),
                                    max_batch_size=256, wait_ms=0, name="llmops-votes")
        auth = self.workspace.settings.auth
        self.sign_ins = SignInLimiter(auth.sign_in_attempts, auth.sign_in_cooldown_s)

    @property
    def settings(self) -> Any:
        return self.workspace.settings.serve

    def workers(self) -> list[WorkerHealth]:
        """The background workers: the database writer, the vote batcher and the engine's decoder."""
        return [self.writer.health(), self.votes.health(), self.engine.batcher.health()]

    async def load(self, version: ModelVersion) -> None:
        """Load `version` into the embedded engine (once), off the event loop."""
        async with self._load_lock:
            if version.name in self.engine.models:
                return
            await asyncio.to_thread(load_version, self.engine, version)

    async def backend_for(self, version: ModelVersion) -> ChatBackend:
        if version.name in self.backends:
            return self.backends[version.name]
        if version.upstream_url:
            backend = UpstreamBackend(version.upstream_url,
                                      api_key=os.environ.get(self.settings.upstream_api_key_env, ""),
                                      timeout_s=self.settings.upstream_timeout_s)
            self.backends[version.name] = backend
            return backend
        await self.load(version)
        return self.engine

    async def complete(self, version: ModelVersion, messages: list[Message], sampling: Sampling,
                       user: str = "") -> Served:
        """One completion from `version` for `user` ('' for none), logged in `requests` (committed before this
        returns) and metrics. A request refused for its own content (ClientError) is not a request of the version:
        it raises, unlogged."""
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        start = time.perf_counter()
        try:
            backend = await self.backend_for(version)
            completion = await backend.complete(version.name, messages, sampling)
        except ClientError:
            raise
        except Exception as exc:  # any failure to produce the completion is a failed request of this version
            await self._record(version, completion_id, user, start, None, f"{type(exc).__name__}: {exc}", messages)
            raise BackendError(f"{version.name}: {type(exc).__name__}: {exc}") from exc
        await self._record(version, completion_id, user, start, completion, "", messages)
        return Served(completion_id, version.name, completion, int(time.time()))

    async def stream(self, version: ModelVersion, messages: list[Message], sampling: Sampling,
                     user: str = "") -> Streamed:
        """A completion from `version` for `user` as it is produced. A failure before the first piece raises here
        (HTTP 502); the request is logged when the stream ends, fails or is abandoned by the client."""
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        start = time.perf_counter()
        try:
            backend = await self.backend_for(version)
            chunks = backend.stream(version.name, messages, sampling)
            first = await anext(chunks)
        except ClientError:
            raise
        except Exception as exc:
            await self._record(version, completion_id, user, start, None, f"{type(exc).__name__}: {exc}", messages)
            raise BackendError(f"{version.name}: {type(exc).__name__}: {exc}") from exc
        relayed = self._relay(version, completion_id, user, start, first, chunks, messages)
        return Streamed(completion_id, version.name, int(time.time()), relayed)

    async def _relay(self, version: ModelVersion, completion_id: str, user: str, start: float, first: Chunk,
                     chunks: AsyncGenerator[Chunk, None], messages: list[Message]) -> AsyncIterator[Chunk]:
        completion, error, chunk, pieces = None, "", first, []
        logged = asyncio.get_running_loop().create_future()
        self._relays.add(logged)
        try:
            while chunk.completion is None:
                yield chunk
                pieces.append(chunk.text)
                chunk = await anext(chunks)
            completion = chunk.completion
            yield chunk
        except StopAsyncIteration:
            error = "the stream ended without a completion"
            raise BackendError(f"{version.name}: {error}") from None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise BackendError(f"{version.name}: {error}") from exc
        finally:
            try:
                await chunks.aclose()
                if completion is None and not error:  # the client went away: logged, but not the version's failure
                    gone = Completion("".join(pieces), 0, sum(1 for p in pieces if p), "client_gone")
                    await self._record(version, completion_id, user, start, gone, "the client went away", messages,
                                       ok=True)
                else:
                    await self._record(version, completion_id, user, start, completion, error, messages)
            finally:
                self._relays.discard(logged)
                logged.set_result(None)

    async def _record(self, version: ModelVersion, completion_id: str, user: str, start: float,
                      completion: Completion | None, error: str, messages: list[Message], *,
                      ok: bool | None = None) -> None:
        """Metrics and the `requests` row of one request served to `user`, with its `messages` and answer, which a
        thumb on it turns into a KTO example (committed before this returns, or, if this is cancelled, soon after).
        `ok` (default: no `error`) is whether it counts as served, not as the version's failure."""
        latency_s = time.perf_counter() - start
        tokens = completion.completion_tokens if completion else 0
        ok = not error if ok is None else ok
        self.metrics.observe(version.name, ok, latency_s, tokens)
        row = {"id": completion_id, "model": version.name, "created_at": time.time(), "latency_ms": latency_s * 1000,
               "completion_tokens": tokens, "ok": ok, "error": error[:1000], "user": user,
               "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
               "answer": completion.text if completion else ""}
        await asyncio.wrap_future(self.writer.submit(lambda conn: conn.execute(db.requests.insert().values(**row))))

    async def close(self) -> None:
        """Stop the workers and close the upstream sessions, once the streams cut short at shutdown are logged
        (uvicorn cancels the requests still open after its grace period and shuts down without waiting for them)."""
        if self._relays:
            await asyncio.wait(self._relays, timeout=RELAY_CLOSE_S)
        self.votes.close()
        self.writer.close()
        for backend in self.backends.values():
            if isinstance(backend, UpstreamBackend):
                await backend.aclose()
