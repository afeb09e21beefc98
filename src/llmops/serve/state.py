"""What one gateway process holds: the workspace, the embedded engine, upstream backends, writers, metrics."""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from llmops import db
from llmops.data.preferences import PreferenceCollector
from llmops.models.registry import ModelVersion
from llmops.serve.arena import VoteRequest, VoteResult, record_votes
from llmops.serve.batching import DynamicBatcher
from llmops.serve.engine import InferenceModel
from llmops.serve.metrics import GatewayMetrics
from llmops.serve.store import GroupWriter
from llmops.serve.types import BackendError, ChatBackend, Completion, Message, Sampling
from llmops.serve.upstream import UpstreamBackend
from llmops.workspace import Workspace


@dataclass(frozen=True)
class Served:
    id: str
    model: str
    completion: Completion
    created: int


@dataclass
class ServeState:
    workspace: Workspace
    engine: InferenceModel
    backends: dict[str, ChatBackend] = field(default_factory=dict)  # version name → backend (injected/upstream)
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    writer: GroupWriter = field(init=False)
    votes: DynamicBatcher[VoteRequest, VoteResult] = field(init=False)
    _load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.writer = GroupWriter(self.workspace.engine)
        collector = PreferenceCollector(self.workspace)
        self.votes = DynamicBatcher(lambda batch: record_votes(self.workspace, collector, batch),
                                    max_batch_size=256, wait_ms=0, name="llmops-votes")

    @property
    def settings(self) -> Any:
        return self.workspace.settings.serve

    async def load(self, version: ModelVersion) -> None:
        """Load `version` into the embedded engine (once), off the event loop."""
        async with self._load_lock:
            if version.name in self.engine.models:
                return
            if version.merged:
                await asyncio.to_thread(self.engine.load_model, version.name, version.path)
            else:
                await asyncio.to_thread(self.engine.load_model, version.name, version.base_model, version.path)

    async def backend_for(self, version: ModelVersion) -> ChatBackend:
        if version.name in self.backends:
            return self.backends[version.name]
        if version.upstream_url:
            backend = UpstreamBackend(version.upstream_url)
            self.backends[version.name] = backend
            return backend
        await self.load(version)
        return self.engine

    async def complete(self, version: ModelVersion, messages: list[Message], sampling: Sampling) -> Served:
        """One completion from `version`, logged in `requests` (committed before this returns) and metrics."""
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        start = time.perf_counter()
        error = ""
        completion = Completion("", 0, 0, "error")
        try:
            backend = await self.backend_for(version)
            completion = await backend.complete(version.name, messages, sampling)
        except Exception as exc:  # any failure to produce the completion is a failed request of this version
            error = f"{type(exc).__name__}: {exc}"
        latency_s = time.perf_counter() - start
        self.metrics.observe(version.name, not error, latency_s, completion.completion_tokens)
        row = {"id": completion_id, "model": version.name, "created_at": time.time(), "latency_ms": latency_s * 1000,
               "completion_tokens": completion.completion_tokens, "ok": not error, "error": error[:1000]}
        await asyncio.wrap_future(self.writer.submit(lambda conn: conn.execute(db.requests.insert().values(**row))))
        if error:
            raise BackendError(f"{version.name}: {error}")
        return Served(completion_id, version.name, completion, int(time.time()))

    async def close(self) -> None:
        self.votes.close()
        self.writer.close()
        for backend in self.backends.values():
            if isinstance(backend, UpstreamBackend):
                await backend.aclose()
