"""The gateway: one FastAPI app with the OpenAI API, the arena, feedback, metrics and admin routes.

`create_app(workspace)` builds it; the embedded engine and per-version backends can be injected (tests, a
shared engine), otherwise the engine comes from the `serve` settings and versions load on first use.
Errors use OpenAI's shape `{"error": {"message", "type", "code"}}`: bad input is a 4xx (bad JSON or fields
422, a too large body 413, a body not received within `serve.body_timeout_s` 408, an unknown model 404), a
failing backend 502, a dead background worker 503 (`/health` reports the workers), a database locked past its
busy timeout 503 with Retry-After, anything else a 500 (the traceback only in the server log).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmops import db
from llmops.errors import LLMOpsError
from llmops.inference.engine import InferenceModel
from llmops.inference.types import BackendError, ChatBackend
from llmops.inference.workers import WorkerDied
from llmops.serve.api_admin import admin_routes, metrics_routes
from llmops.serve.api_arena import arena_routes
from llmops.serve.api_chat import chat_routes
from llmops.serve.health import health_routes, watch_workers
from llmops.serve.state import ServeState
from llmops.workspace import Workspace

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)
RETRY_AFTER_S = 5  # seconds a client is asked to wait after a 503 (database busy, a dead worker)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is answered 413 before the route reads it, one not received
    within `timeout_s` (slow or truncated) 408; a client that leaves mid-body gets nothing and holds nothing."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                chunks = await self._read(receive)
        except TimeoutError:
            late = error_response(408, f"request body: not received within {self.timeout_s:g} s")
            late.headers["Connection"] = "close"
            await late(scope, receive, send)
            return
        if chunks is None:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        if chunks[-1]["type"] == "http.disconnect":
            return
        replay = iter(chunks)

        async def replay_receive() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replay_receive, send)

    async def _read(self, receive: Receive) -> list[Message] | None:
        """The body's messages, up to the end of the body or a disconnect; None once it exceeds `max_bytes`."""
        chunks, size = [], 0
        while True:
            message = await receive()
            chunks.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if message["type"] != "http.request" or not message.get("more_body", False):
                return chunks


def _too_large(limit: int) -> JSONResponse:
    return error_response(413, f"request body: larger than the limit of {limit} bytes")


def error_response(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _rejected(request: Request, status: int) -> None:
    """A 4xx answer counts in `llmops_rejected_requests`, never as a failed request of a version."""
    if status < 500:
        request.app.state.serve.metrics.rejected.labels(status=str(status)).inc()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        _rejected(request, exc.status_code)
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        _rejected(request, 422)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return error_response(422, problems)

    @app.exception_handler(LLMOpsError)
    async def llmops_error(request: Request, exc: LLMOpsError) -> JSONResponse:
        _rejected(request, 400)
        return error_response(400, str(exc))

    @app.exception_handler(BackendError)
    async def backend_error(_: Request, exc: BackendError) -> JSONResponse:
        return error_response(502, str(exc))


def _install_failure_handlers(app: FastAPI) -> None:
    """A database busy past its timeout is a 503 with Retry-After; any other unhandled error a JSON 500 without the
    traceback, which the server logs (Starlette re-raises it after the handler's response is sent)."""

    @app.exception_handler(OperationalError)
    async def database_error(request: Request, exc: OperationalError) -> JSONResponse:
        if not db.is_busy(exc):
            raise exc
        logger.warning("%s %s: database busy: %s", request.method, request.url.path, exc.orig)
        response = error_response(503, "database: busy (locked by another writer); try again shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(Exception)
    async def internal_error(_: Request, __: Exception) -> JSONResponse:
        return error_response(500, "internal error; the server log has the details")


def _install_worker_died(app: FastAPI) -> None:
    @app.exception_handler(WorkerDied)
    async def worker_died(_: Request, exc: WorkerDied) -> JSONResponse:
        response = error_response(503, str(exc))
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response


def create_app(
    workspace: Workspace,
    *,
    engine: InferenceModel | None = None,
    backends: dict[str, ChatBackend] | None = None,
) -> FastAPI:
    """The gateway app of `workspace`, without any screen (`llmops.ui.app.mount_ui` adds the web UI). An injected
    `engine` is left open at shutdown; the app's own one is closed."""
    settings = workspace.settings.serve
    own_engine = engine is None
    engine = engine or InferenceModel(max_batch_size=settings.max_batch_size, batch_wait_ms=settings.batch_wait_ms)
    state = ServeState(workspace, engine, dict(backends or {}))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watchdog = asyncio.create_task(watch_workers(state), name="llmops-watchdog")
        yield
        watchdog.cancel()
        await state.close()
        if own_engine:
            state.engine.close()

    app = FastAPI(title="llmops gateway", lifespan=lifespan)
    app.state.serve = state
    _install_error_handlers(app)
    _install_failure_handlers(app)
    _install_worker_died(app)
    for routes in (chat_routes(state), arena_routes(state), admin_routes(state), metrics_routes(state),
                   health_routes(state)):
        app.include_router(routes)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    return app
