"""ASGI guards the UI puts in front of its Gradio apps: sign-in on every route, and allowed origins.

Gradio 5.50's `auth` guards only the routes that depend on its `login_check` (config, info, upload,
queue/join, queue/data, queue/status, run/…, call/…, file=…, file/…, proxy=…, component_server,
process_recording, monitoring); these work without a session: heartbeat/{session}, cancel, reset,
stream/{event} (POST and websocket), stream/…/close and the HLS segments, upload_progress, startup-events,
deep_link, monitoring/summary and the vibe-… editor routes. `SignInGuard` answers 401 to every path
under its prefix that is not public, reading Gradio's session cookie exactly as Gradio's own
`get_current_user` does, so Gradio's login and logout stay the one session mechanism.
`OriginGuard` refuses (403) a browser request whose `Origin` is neither the gateway's own nor allowed:
Gradio would echo it back with `Access-Control-Allow-Credentials: true` when the Host is not localhost.
`HostGuard` refuses (400) a request whose `Host` the UI does not answer to, so a page whose own name was
rebound to this address (DNS rebinding) is never "same-origin": the gateway's own origin is only trusted for
an allowed Host.
"""

from collections.abc import Callable, Iterable

from gradio.routes import App as GradioApp
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from llmops.serve.gateway import error_response
from llmops.settings import Settings

LOGIN_PAGE = frozenset({"", "/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css"})
LOGIN_ASSETS = ("/assets/", "/static/", "/svelte/")
UPLOADS = ("/gradio_api/upload", "/gradio_api/upload_progress")
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})


def login_page(path: str) -> bool:
    """The paths of a Gradio app (below its mount) that the login page needs before anyone signs in."""
    return path in LOGIN_PAGE or path.startswith(LOGIN_ASSETS)


def no_uploads(path: str) -> bool:
    """A page open to everyone (the voters' arena) still takes no file uploads: it has no file input."""
    return path.rstrip("/") not in UPLOADS


def session_user(gradio: GradioApp, connection: HTTPConnection) -> str | None:
    """The user of the request's Gradio session cookie, looked up as gradio.routes `get_current_user` does."""
    cookies = connection.cookies
    token = (cookies.get(f"access-token-{gradio.cookie_id}")
             or cookies.get(f"access-token-unsecure-{gradio.cookie_id}"))
    user: str | None = gradio.tokens.get(token) if token else None
    return user


def sub_path(scope: Scope, prefix: str) -> str | None:
    """The request's path below `prefix` ("" for the prefix itself), or None when it is not under it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    if path == prefix or path.startswith(prefix + "/"):
        return path[len(prefix):]
    return None


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    """An HTTP error in the gateway's OpenAI shape, or a websocket closed with policy violation."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    await error_response(status, message)(scope, receive, send)


class SignInGuard:
    """401 for every path under `prefix` that is not `public`, unless the request has a session of `gradio`;
    the answer points to the login page at `sign_in_at`."""

    def __init__(self, app: ASGIApp, prefix: str, gradio: GradioApp, public: Callable[[str], bool],
                 sign_in_at: str) -> None:
        self.app, self.prefix, self.gradio, self.public, self.sign_in_at = app, prefix, gradio, public, sign_in_at

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = sub_path(scope, self.prefix) if scope["type"] in ("http", "websocket") else None
        if path is None or self.public(path) or session_user(self.gradio, HTTPConnection(scope)) is not None:
            await self.app(scope, receive, send)
            return
        await refuse(scope, receive, send, 401, f"{self.prefix}{path}: sign in first at {self.sign_in_at}/")


def normal_origin(origin: str) -> str:
    """scheme://host[:port] lower-cased, without the scheme's default port."""
    origin = origin.strip().lower().rstrip("/")
    scheme = origin.partition("://")[0]
    default = _DEFAULT_PORTS.get(scheme)
    return origin[: -len(default)] if default and origin.endswith(default) else origin


def own_origin(scope: Scope) -> str:
    """The origin the request was sent to: its scheme (ws → http) and its Host header."""
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    host = Headers(scope=scope).get("host")
    if host is None and scope.get("server"):
        host = f"{scope['server'][0]}:{scope['server'][1]}"
    return normal_origin(f"{scheme}://{host or ''}")


class OriginGuard:
    """403 for a request under `prefixes` whose Origin is neither same-origin nor in `allowed`."""

    def __init__(self, app: ASGIApp, prefixes: Iterable[str], allowed: Iterable[str]) -> None:
        self.app, self.prefixes = app, tuple(prefixes)
        self.allowed = frozenset(normal_origin(origin) for origin in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and any(sub_path(scope, p) is not None for p in self.prefixes):
            origin = Headers(scope=scope).get("origin")
            if origin is not None and normal_origin(origin) not in self.allowed | {own_origin(scope)}:
                await refuse(scope, receive, send, 403, f"origin {origin!r}: not allowed (same-origin, or add it "
                             "to auth.allowed_origins)")
                return
        await self.app(scope, receive, send)


def host_name(host: str) -> str:
    """The name of a `Host` header (or an origin's host[:port]), lower-cased, without port, brackets or final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0].rstrip(".")


def allowed_hosts(settings: Settings, bind_host: str | None = None) -> frozenset[str]:
    """The host names the UI answers to: localhost, the address it is bound to (`bind_host`, else serve.host)
    unless that is every address, the hosts of auth.allowed_origins and auth.allowed_hosts."""
    bound = host_name(settings.serve.host if bind_host is None else bind_host)
    origins = {host_name(origin.partition("://")[2]) for origin in settings.auth.allowed_origins}
    return LOCAL_HOSTS | origins | set(settings.auth.allowed_hosts) | ({bound} - ANY_ADDRESS)


class HostGuard:
    """400 for a request under `prefixes` whose `Host` header names none of `allowed` (a request without one is
    no browser's and passes)."""

    def __init__(self, app: ASGIApp, prefixes: Iterable[str], allowed: Iterable[str]) -> None:
        self.app, self.prefixes, self.allowed = app, tuple(prefixes), frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and any(sub_path(scope, p) is not None for p in self.prefixes):
            host = Headers(scope=scope).get("host")
            if host is not None and host_name(host) not in self.allowed:
                await refuse(scope, receive, send, 400, f"host {host[:100]!r}: the UI does not answer to it "
                             "(localhost, serve.host, or add it to auth.allowed_hosts)")
                return
        await self.app(scope, receive, send)
