"""The gateway: one FastAPI app with the OpenAI API, the arena, feedback, metrics and admin routes.

`create_app(workspace)` builds it; the embedded engine and per-version backends can be injected (tests, a
shared engine), otherwise the engine comes from the `serve` settings and versions load on first use.
Errors use OpenAI's shape `{"error": {"message", "type", "code"}}`: bad input is a 4xx (bad JSON or fields
422, a too large body 413, an unknown model 404), a failing backend 502.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmops.errors import LLMOpsError
from llmops.serve.api_admin import admin_routes, metrics_routes
from llmops.serve.api_arena import arena_routes
from llmops.serve.api_chat import chat_routes
from llmops.serve.engine import InferenceModel
from llmops.serve.state import ServeState
from llmops.serve.types import BackendError, ChatBackend
from llmops.ui.app import mount_ui
from llmops.workspace import Workspace

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is answered 413 before the route reads it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            chunks.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        replay = iter(chunks)

        async def replay_receive() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replay_receive, send)


def _too_large(limit: int) -> JSONResponse:
    return error_response(413, f"request body: larger than the limit of {limit} bytes")


def error_response(status: int, message: str) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return error_response(422, problems)

    @app.exception_handler(LLMOpsError)
    async def llmops_error(_: Request, exc: LLMOpsError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(BackendError)
    async def backend_error(_: Request, exc: BackendError) -> JSONResponse:
        return error_response(502, str(exc))


def create_app(
    workspace: Workspace,
    *,
    engine: InferenceModel | None = None,
    backends: dict[str, ChatBackend] | None = None,
    ui: bool = True,
) -> FastAPI:
    """The gateway app of `workspace` (with the Gradio UI at /ui unless `ui` is false). An injected `engine` is
    left open at shutdown; the app's own one is closed."""
    settings = workspace.settings.serve
    own_engine = engine is None
    engine = engine or InferenceModel(max_batch_size=settings.max_batch_size, batch_wait_ms=settings.batch_wait_ms)
    state = ServeState(workspace, engine, dict(backends or {}))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await state.close()
        if own_engine:
            state.engine.close()

    app = FastAPI(title="llmops gateway", lifespan=lifespan)
    app.state.serve = state
    _install_error_handlers(app)
    for routes in (chat_routes(state), arena_routes(state), admin_routes(state), metrics_routes(state)):
        app.include_router(routes)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if ui:
        mount_ui(app, workspace)
    return app
