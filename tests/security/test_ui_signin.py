"""Security: sign-in for the web UI (Gradio's own API routes included), the arena gate, allowed origins, and
garbled Authorization headers. The gateway runs in process (httpx ASGI transport) with the UI mounted."""

import asyncio
import base64
import os
import re
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute
from fastapi.testclient import TestClient
from gradio.routes import App as GradioApp
from starlette.routing import BaseRoute, Mount
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from fakes import Echo
from llmops import auth
from llmops.cli import app as cli
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.ui.app import mount_ui, signed_in_as
from llmops.ui.gateway_client import GatewayClient
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.anyio
ALLOWED = "https://llm.example.com"
FOREIGN = "https://evil.example"
OPEN_WITHOUT_SIGN_IN = {"/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/assets/{path:path}",
                        "/static/{path:path}", "/svelte/{path:path}"}
GARBLED = [b"Bearer \xff\xfe\x00", "Bearer é€".encode(), b"\xc3\x28", b"Basic \xff",
           b"Basic " + base64.b64encode(b"\xff\xfe:x"), b"Basic " + base64.b64encode(b"admin"), b"Bearer"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _gateway(workspace: Workspace, overrides: list[str]) -> FastAPI:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    ws = open_workspace(workspace.root, [f"auth.allowed_origins=[{ALLOWED}]", "auth.allowed_hosts=[gw]", *overrides])
    return mount_ui(create_app(ws, backends={"chat-v1.0": Echo(), "chat-v2.0": Echo()}), ws)


@asynccontextmanager
async def serving(workspace: Workspace, *overrides: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = _gateway(workspace, list(overrides))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield app, http


async def call(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request, bounded: a route that streams forever (heartbeat) must be refused, not hang the test."""
    return await asyncio.wait_for(http.request(method, path, **kwargs), timeout=30)


async def sign_in(http: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await call(http, "POST", "/ui/login", data={"username": user, "password": password})


def gradio_app(app: FastAPI, path: str = "/ui") -> GradioApp:
    return next(r.app for r in app.routes if isinstance(r, Mount) and r.path == path)


def http_routes(routes: list[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(method, path template) of every HTTP route, routers included by FastAPI walked into."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from http_routes(included.routes)
        elif not isinstance(route, APIWebSocketRoute):
            for method in sorted(getattr(route, "methods", None) or ()):
                yield method, getattr(route, "path", "")


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]*\}", "0", template)


def start_training_fn(app: FastAPI) -> tuple[int, int]:
    """(fn_index, button id) of the Train tab's "Start training" click."""
    config = gradio_app(app).get_blocks().config
    button = next(c["id"] for c in config["components"] if c.get("props", {}).get("value") == "Start training")
    fn_index = next(d["id"] for d in config["dependencies"]
                    if any(t[0] == button and t[1] == "click" for t in d["targets"]))
    return fn_index, button


def _is_refused(response: httpx.Response, status: int) -> bool:
    """`status` in the gateway's OpenAI error shape (a HEAD answer has no body)."""
    if response.request.method == "HEAD":
        return response.status_code == status
    return response.status_code == status and response.json()["error"]["code"] == status


async def test_every_gradio_route_needs_sign_in(workspace: Workspace) -> None:
    async with serving(workspace) as (app, http):
        routes = sorted(set(http_routes(gradio_app(app).routes)))
        assert ("POST", "/gradio_api/upload") in routes and ("GET", "/gradio_api/heartbeat/{session_hash}") in routes
        open_routes = set()
        for method, template in routes:
            response = await call(http, method, "/ui" + concrete(template))
            if response.status_code == 401:
                assert _is_refused(response, 401), (method, template)
            else:
                open_routes.add(template)
        assert open_routes == OPEN_WITHOUT_SIGN_IN
        page = await call(http, "GET", "/ui/")
        assert '"auth_required":true' in page.text.replace(" ", "") and "Start training" not in page.text


async def test_upload_start_and_file_reads_are_refused_without_sign_in(workspace: Workspace) -> None:
    gradio_cache = Path(os.environ["GRADIO_TEMP_DIR"])
    marker = f"import os  # {workspace.root}\n".encode()  # this test's upload, whatever other tests left there
    async with serving(workspace) as (app, http):
        upload = await call(http, "POST", "/ui/gradio_api/upload",
                            files=[("files", ("evil.py", marker, "text/x-python"))])
        assert _is_refused(upload, 401)
        fn_index, button = start_training_fn(app)
        join = await call(http, "POST", "/ui/gradio_api/queue/join", json={
            "data": ["/etc/shadow"], "fn_index": fn_index, "trigger_id": button, "session_hash": "attacker",
            "event_data": None})
        assert _is_refused(join, 401)
        for path in (f"/ui/gradio_api/file={workspace.settings_path}", "/ui/gradio_api/run/predict",
                     "/ui/config", "/ui/gradio_api/info", "/ui/gradio_api/heartbeat/attacker",
                     "/ui/gradio_api/queue/data?session_hash=attacker"):
            assert _is_refused(await call(http, "GET" if "run/" not in path else "POST", path), 401), path
    assert not [path for path in gradio_cache.rglob("evil.py") if path.read_bytes() == marker]
    assert not any(workspace.runs_dir.iterdir())
    client = TestClient(app, base_url="http://gw")
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ui/gradio_api/stream/0") as socket:
        socket.receive_json()
    assert closed.value.code == 1008


async def test_admin_signs_in_with_the_token_and_signs_out(workspace: Workspace) -> None:
    async with serving(workspace) as (_, http):
        for user, password in (("admin", "wrong"), ("admin", ""), ("nobody", workspace.admin_token()),
                               ("admin", workspace.admin_token() + "x")):
            refused = await sign_in(http, user, password)
            assert refused.status_code == (400 if password else 422) and not http.cookies, user
            assert (await call(http, "GET", "/ui/config")).status_code == 401
        assert (await sign_in(http, "admin", workspace.admin_token())).json() == {"success": True}
        assert (await call(http, "GET", "/ui/config")).status_code == 200
        page = await call(http, "GET", "/ui/")
        assert '"username":"admin"' in page.text and "Start training" in page.text
        session = dict(http.cookies)
        out = await call(http, "GET", "/ui/logout")
        assert out.status_code == 302 and out.headers["location"].endswith("/ui")
        assert (await call(http, "GET", "/ui/config")).status_code == 401
        replayed = await call(http, "GET", "/ui/config", cookies=session)
        assert _is_refused(replayed, 401)


def test_the_header_shows_who_is_signed_in() -> None:
    line = signed_in_as(gr.Request(username="alice"))
    assert "`alice`" in line and "[sign out](/ui/logout)" in line
    assert signed_in_as(gr.Request()) == ""


async def test_a_configured_user_signs_in_with_its_password(workspace: Workspace) -> None:
    auth.add_user(workspace.settings_path, "alice", "correct horse ☃")
    async with serving(workspace) as (_, http):
        assert (await sign_in(http, "alice", "correct horse")).status_code == 400
        assert (await sign_in(http, "alice", "correct horse ☃")).status_code == 200
        assert '"username":"alice"' in (await call(http, "GET", "/ui/")).text


async def test_foreign_origins_are_refused_and_never_echoed(workspace: Workspace) -> None:
    token = {"Authorization": f"Bearer {workspace.admin_token()}"}
    async with serving(workspace) as (_, http):
        for origin in (FOREIGN, "http://gw:8080", "https://gw", "http://gw.evil.example", "null"):
            for method, path in (("GET", "/ui/"), ("POST", "/ui/login"), ("OPTIONS", "/ui/gradio_api/upload"),
                                 ("POST", "/v1/admin/rollback"), ("GET", "/ui/gradio_api/heartbeat/x")):
                headers = {"Origin": origin, "Access-Control-Request-Method": "POST", **token}
                response = await call(http, method, path, headers=headers)
                assert _is_refused(response, 403), (origin, method, path)
                assert "access-control-allow-origin" not in response.headers
                assert "auth.allowed_origins" in response.json()["error"]["message"]
        for origin in ("http://gw", "HTTP://GW:80", ALLOWED):
            response = await call(http, "GET", "/ui/", headers={"Origin": origin})
            assert response.status_code == 200, origin
            assert response.headers["access-control-allow-origin"] == origin
        assert (await call(http, "GET", "/v1/models", headers={"Origin": FOREIGN})).status_code == 200


async def test_the_arena_needs_sign_in_unless_it_is_open(workspace: Workspace) -> None:
    auth.add_user(workspace.settings_path, "alice", "s3cret")
    basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    async with serving(workspace) as (_, http):
        for header in ("", "Bearer wrong", f"Basic {workspace.admin_token()}", basic + "x",
                       "Basic " + base64.b64encode(b"alice:wrong").decode()):
            refused = await call(http, "POST", "/v1/arena/battles", json={"prompt": "q"},
                                 headers={"Authorization": header})
            assert _is_refused(refused, 401), header
            assert "Bearer" in refused.headers["www-authenticate"]
        for header in (f"Bearer {workspace.admin_token()}", basic):
            battle = await call(http, "POST", "/v1/arena/battles", json={"prompt": "q"},
                                headers={"Authorization": header})
            assert battle.status_code == 200, header
            vote_path = f"/v1/arena/battles/{battle.json()['id']}/vote"
            assert _is_refused(await call(http, "POST", vote_path, json={"vote": "a"}), 401)
            assert (await call(http, "POST", vote_path, json={"vote": "a"},
                               headers={"Authorization": header})).status_code == 200
        assert (await call(http, "GET", "/arena/")).status_code == 404


async def test_an_open_arena_takes_votes_and_serves_the_voters_page(workspace: Workspace) -> None:
    async with serving(workspace, "auth.open_arena=true") as (app, http):
        battle = await call(http, "POST", "/v1/arena/battles", json={"prompt": "q"})
        assert battle.status_code == 200
        vote = await call(http, "POST", f"/v1/arena/battles/{battle.json()['id']}/vote", json={"vote": "tie"})
        assert vote.status_code == 200
        page = await call(http, "GET", "/arena/")
        assert page.status_code == 200 and "auth_required" not in page.text and "A/B arena" in page.text
        config = (await call(http, "GET", "/arena/config")).json()
        labels = {str(c.get("props", {}).get("value")) for c in config["components"]}
        assert "🎲 Generate two answers" in labels and "Start training" not in labels
        upload = await call(http, "POST", "/arena/gradio_api/upload", files=[("files", ("x.txt", b"x"))])
        assert _is_refused(upload, 401) and "sign in first at /ui/" in upload.json()["error"]["message"]
        assert _is_refused(await call(http, "GET", "/ui/config"), 401)
        assert _is_refused(await call(http, "GET", "/arena/", headers={"Origin": FOREIGN}), 403)
        voters = GatewayClient(app)
        assert (await voters.battle("q"))["id"]


async def test_the_ui_arena_of_a_signed_in_operator_works_when_closed(workspace: Workspace) -> None:
    async with serving(workspace) as (app, _):
        with pytest.raises(LLMOpsError, match="401"):
            await GatewayClient(app).battle("q")
        operator = GatewayClient(app, arena_token=workspace.admin_token)
        battle = await operator.battle("which cable?")
        assert (await operator.vote(battle["id"], "b"))["vote"] == "b"


async def test_garbled_authorization_bytes_are_401_never_500(workspace: Workspace) -> None:
    async with serving(workspace) as (_, http):
        for raw in GARBLED:
            for path, body in (("/v1/arena/battles", {"prompt": "q"}), ("/v1/admin/rollback", None)):
                response = await call(http, "POST", path, json=body, headers=[(b"authorization", raw)])
                assert _is_refused(response, 401), (path, raw)


def test_password_hashes_are_salted_and_checked_in_constant_form() -> None:
    first, second = auth.hash_password("pässwörd"), auth.hash_password("pässwörd")
    assert first != second and first.startswith("scrypt$16384$8$1$") and "pässwörd" not in first
    assert auth.verify_password("pässwörd", first) and auth.verify_password("pässwörd", second)
    assert not auth.verify_password("passwörd", first)
    for broken in ("", "scrypt$", "scrypt$1$8$1$AA==$AA==", "bcrypt$16384$8$1$AA==$AA==", first[:-4],
                   "scrypt$16384$8$1$!!$AA=="):
        assert not auth.verify_password("pässwörd", broken), broken
    assert not auth.same_secret("é", "e") and auth.same_secret("é", "é")
    assert auth.parse_authorization("Basic " + base64.b64encode(b"bob:a:b").decode()) == \
        auth.Credentials("basic", "bob", "a:b")
    assert auth.parse_authorization("Digest x") is None and auth.parse_authorization("Basic ===") is None


def test_cli_adds_users_with_a_hidden_confirmed_password(workspace: Workspace) -> None:
    runner = CliRunner()
    root = str(workspace.root)
    added = runner.invoke(cli, ["auth", "add-user", "alice", "-w", root], input="s3cret pass\ns3cret pass\n")
    assert added.exit_code == 0, added.output
    assert "s3cret" not in added.output
    text = workspace.settings_path.read_text(encoding="utf-8")
    assert "s3cret" not in text and stat.S_IMODE(workspace.settings_path.stat().st_mode) == 0o600
    stored = yaml.safe_load(text)["auth"]["users"]["alice"]
    assert auth.verify_password("s3cret pass", stored)
    assert auth.verify_user(open_workspace(workspace.root), "alice", "s3cret pass")
    mismatch = runner.invoke(cli, ["auth", "add-user", "bob", "-w", root], input="one\ntwo\ntwo\ntwo\n")
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output
    listed = runner.invoke(cli, ["auth", "list", "-w", root, "--json"])
    assert [u["user"] for u in yaml.safe_load(listed.output)["users"]] == ["admin", "alice", "bob"]
    for name, error in (("alice", "exists"), ("admin", "not 'admin'"), ("no spaces", "expected 1–64")):
        again = runner.invoke(cli, ["auth", "add-user", name, "-w", root], input="x\nx\n")
        assert again.exit_code != 0 and error in str(again.exception), name
    assert yaml.safe_load(workspace.settings_path.read_text(encoding="utf-8"))["auth"]["users"]["alice"] == stored


def test_bad_auth_settings_name_the_key(workspace: Workspace) -> None:
    for override, problem in (("auth.users={alice: plaintext}", "not a password hash"),
                              ("auth.allowed_origins=[evil.example]", "expected scheme://host"),
                              ("auth.allowed_origins=[https://a.example/path]", "expected scheme://host")):
        with pytest.raises(LLMOpsError, match=r"auth\.(users|allowed_origins)") as error:
            open_workspace(workspace.root, [override])
        assert problem in str(error.value)
