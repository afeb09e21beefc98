"""Security, on a real server: the gateway with the UI mounted, served by uvicorn on 127.0.0.1, and real requests
(httpx over a socket, a websocket client). Without sign-in every state-changing route is refused — Gradio's own
API routes under /ui (upload, file=, queue/join, queue/data, call/<fn>, run/predict, heartbeat, cancel, reset,
component_server, stream/<event> over HTTP and websocket) and the admin API — and each same request is accepted
with the session cookie of Gradio's login (the admin API only with the bearer token), so a guard that let
everything through or refused everything would fail here."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from browser import serving
from llmops.models import registry
from llmops.workspace import Workspace

TIMEOUT_S = 30.0
SESSION = "live-test"


@pytest.fixture
def server_url(workspace: Workspace) -> Iterator[str]:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    with serving(workspace) as url:
        yield url


@contextmanager
def clients(url: str, workspace: Workspace) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """(anonymous, signed in through Gradio's login form as admin with the admin token)."""
    with httpx.Client(base_url=url, timeout=TIMEOUT_S) as anonymous, \
            httpx.Client(base_url=url, timeout=TIMEOUT_S) as signed:
        login = signed.post("/ui/login", data={"username": "admin", "password": workspace.admin_token()})
        assert login.status_code == 200 and login.json() == {"success": True}, login.text
        assert signed.cookies, "the login set no session cookie"
        yield anonymous, signed


def first_line(client: httpx.Client, path: str) -> tuple[int, str]:
    """(status, first line) of a route that may stream forever (heartbeat, queue/data): read one line, close."""
    with client.stream("GET", path) as response:
        line = next(response.iter_lines(), "") if response.status_code == 200 else response.read().decode()
        return response.status_code, line


def refused(response: httpx.Response) -> bool:
    """The guard's answer: 401 in the gateway's error shape, pointing to the login page."""
    return response.status_code == 401 and "sign in first at /ui/" in response.json()["error"]["message"]


def dependency(config: dict[str, Any], elem_id: str) -> tuple[int, int, str]:
    """(fn_index, trigger id, api_name) of the click on the button with `elem_id`, from the page's config."""
    button = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    found = next(d for d in config["dependencies"] if any(t[0] == button for t in d["targets"]))
    return int(found["id"]), button, str(found["api_name"])


def requests(config: dict[str, Any], uploaded: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx arguments) of each state-changing Gradio route, with a harmless body: the Models
    tab's Refresh click, the file uploaded in the test."""
    fn_index, trigger, api_name = dependency(config, "models-refresh")
    join = {"data": [], "fn_index": fn_index, "trigger_id": trigger, "session_hash": SESSION, "event_data": None}
    return [
        ("POST", "/ui/gradio_api/queue/join", {"json": join}),
        ("POST", f"/ui/gradio_api/call/{api_name}", {"json": {"data": []}}),
        ("POST", "/ui/gradio_api/run/predict", {"json": {"data": [], "fn_index": fn_index}}),
        ("GET", f"/ui/gradio_api/file={uploaded}", {}),
        ("POST", "/ui/gradio_api/cancel", {"json": {"session_hash": SESSION, "fn_index": fn_index,
                                                     "event_id": "none"}}),
        ("POST", "/ui/gradio_api/reset", {"json": {"event_id": "none"}}),
        ("POST", "/ui/gradio_api/component_server", {"json": {}}),
    ]


def test_gradio_routes_need_the_session_cookie(server_url: str, workspace: Workspace) -> None:
    marker = f"uploaded by {workspace.root}".encode()
    with clients(server_url, workspace) as (anonymous, signed):
        assert refused(anonymous.get("/ui/config"))
        config = signed.get("/ui/config").json()
        files = [("files", ("notes.txt", marker, "text/plain"))]
        assert refused(anonymous.post("/ui/gradio_api/upload", files=files))
        upload = signed.post("/ui/gradio_api/upload", files=files)
        assert upload.status_code == 200, upload.text
        [uploaded] = upload.json()
        for method, path, arguments in requests(config, uploaded):
            assert refused(anonymous.request(method, path, **arguments)), (method, path)
            accepted = signed.request(method, path, **arguments)
            expected = 400 if path.endswith("component_server") else 200  # Gradio's own answer to the empty body
            assert accepted.status_code == expected, (method, path, accepted.text)
        assert signed.get(f"/ui/gradio_api/file={uploaded}").content == marker
        for path in (f"/ui/gradio_api/heartbeat/{SESSION}", f"/ui/gradio_api/queue/data?session_hash={SESSION}"):
            status, line = first_line(anonymous, path)
            assert status == 401 and "sign in first" in json.loads(line)["error"]["message"], path
            assert first_line(signed, path)[0] == 200, path
        assert refused(anonymous.post("/ui/gradio_api/stream/none", json={"data": []}))


def test_the_stream_websocket_needs_the_session_cookie(server_url: str, workspace: Workspace) -> None:
    socket_url = server_url.replace("http://", "ws://") + "/ui/gradio_api/stream/none"
    with clients(server_url, workspace) as (_, signed):
        cookie = "; ".join(f"{name}={value}" for name, value in signed.cookies.items())
    with pytest.raises(InvalidStatus) as closed, connect(socket_url, open_timeout=TIMEOUT_S):
        pass
    assert closed.value.response.status_code == 403  # closed before the handshake: uvicorn answers 403
    with connect(socket_url, open_timeout=TIMEOUT_S, additional_headers={"Cookie": cookie}) as socket:
        assert socket.protocol.state.name == "OPEN"


def test_the_admin_api_needs_the_token_not_a_ui_session(server_url: str, workspace: Workspace) -> None:
    body = {"model": "chat-v2.0", "by": "admin"}
    with clients(server_url, workspace) as (anonymous, signed):
        for client in (anonymous, signed):  # a browser's UI session is no admin credential (no CSRF through it)
            response = client.post("/v1/admin/promote", json=body)
            assert response.status_code == 401 and "bearer token" in response.json()["error"]["message"]
        assert registry.aliases(workspace)["production"] == "chat-v1.0"
        promoted = anonymous.post("/v1/admin/promote", json=body,
                                  headers={"Authorization": f"Bearer {workspace.admin_token()}"})
        assert promoted.status_code == 200, promoted.text
    assert registry.aliases(workspace)["production"] == "chat-v2.0"
