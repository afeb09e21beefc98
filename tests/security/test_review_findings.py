"""Security review of issue 12's fixes: the Data tab's upload event takes only files the browser uploaded (no
server path, no FIFO that blocks the event loop), the browser surfaces answer only to allowed Host names (DNS
rebinding), and failed sign-ins lock a user out for a cooldown (Gradio's login and HTTP Basic alike)."""

import base64
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from gradio.routes import App as GradioApp
from gradio.utils import get_upload_folder
from starlette.routing import Mount

from deadline import within
from fakes import Echo
from llmops import auth
from llmops.data.uploads import uploads_dir
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer
from llmops.settings import load_settings
from llmops.ui import data_tab
from llmops.ui.app import mount_ui
from llmops.ui.guard import allowed_hosts
from llmops.workspace import Workspace, open_workspace

DEADLINE_S = 20.0
FOREIGN = "evil.example"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _gateway(workspace: Workspace, overrides: list[str]) -> FastAPI:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    ws = open_workspace(workspace.root, overrides)
    return mount_ui(create_app(ws, backends={"chat-v1.0": Echo(), "chat-v2.0": Echo()}), ws)


@contextmanager
def live(workspace: Workspace, *overrides: str) -> Iterator[tuple[FastAPI, httpx.Client]]:
    """The gateway with the UI on a real socket (Gradio's queue runs on the server's event loop), signed in as
    admin."""
    app = _gateway(workspace, list(overrides))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        signed_in = http.post("/ui/login", data={"username": "admin", "password": workspace.admin_token()})
        assert signed_in.status_code == 200
        yield app, http


@asynccontextmanager
async def in_process(workspace: Workspace, *overrides: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = _gateway(workspace, list(overrides))
    transport = httpx.ASGITransport(app=app)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as http):
        yield app, http


def upload_event(app: FastAPI) -> tuple[int, int]:
    """(fn_index, component id) of the Data tab's document upload (a gr.File's upload event)."""
    gradio = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == "/ui")
    assert isinstance(gradio, GradioApp)
    config = gradio.get_blocks().config
    files = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "documents-upload")
    fn_index = next(d["id"] for d in config["dependencies"]
                    if any(t[0] == files and t[1] == "upload" for t in d["targets"]))
    return fn_index, files


def file_data(path: str, name: str) -> dict[str, Any]:
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def run_upload(app: FastAPI, http: httpx.Client, files: list[dict[str, Any]], session: str) -> dict[str, Any]:
    """Join the queue with the upload event and read its stream to the end: the `process_completed` message."""
    fn_index, trigger = upload_event(app)
    joined = http.post("/ui/gradio_api/queue/join", json={
        "fn_index": fn_index, "trigger_id": trigger, "session_hash": session, "data": [files, ""],
        "event_data": None})
    assert joined.status_code == 200, joined.text
    with http.stream("GET", "/ui/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[len("data:"):]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                return dict(message)
    raise AssertionError("the event's stream ended without process_completed")


def test_a_fifo_given_as_an_upload_is_refused_at_once_and_the_gateway_answers(
        workspace: Workspace, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo2.txt"
    os.mkfifo(fifo)
    with live(workspace) as (app, http):
        done = within(DEADLINE_S, lambda: run_upload(app, http, [file_data(str(fifo), "f.txt")], "fifo"), [fifo])
        assert done["success"] is False and "not uploaded by a user" in done["output"]["error"]
        assert within(DEADLINE_S, lambda: http.get("/health"), [fifo]).status_code == 200
    assert not uploads_dir(workspace).exists()


def test_server_files_and_symlinks_given_as_uploads_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("server secret\n")
    link = tmp_path / "tok_link.txt"
    link.symlink_to(workspace.token_path)
    with live(workspace) as (app, http):
        for path, name in ((secret, "f.txt"), (link, "tok_link.txt")):
            done = within(DEADLINE_S, lambda p=path, n=name: run_upload(app, http, [file_data(str(p), n)], n))
            assert done["success"] is False and "not uploaded by a user" in done["output"]["error"], name
        assert not uploads_dir(workspace).exists()
        uploaded = http.post("/ui/gradio_api/upload", files=[("files", ("notes.md", b"real upload\n"))])
        assert uploaded.status_code == 200
        done = within(DEADLINE_S, lambda: run_upload(app, http, [file_data(uploaded.json()[0], "notes.md")], "ok"))
        assert done["success"] is True, done
    assert [p.read_text() for p in uploads_dir(workspace).iterdir()] == ["real upload\n"]
    assert not list(Path(get_upload_folder()).rglob("tok_link.txt"))


def test_the_upload_handler_refuses_files_outside_gradios_upload_folder(workspace: Workspace, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("server secret\n")
    inside = Path(get_upload_folder()) / tmp_path.name
    inside.mkdir(parents=True)
    link = inside / "tok_link.txt"
    link.symlink_to(workspace.token_path)
    for given in (secret, link, inside / ".." / ".." / secret.name):
        field, status = data_tab.upload(workspace, [str(given)], "kept")
        assert field == "kept" and status.startswith("❌") and "not a file uploaded through this page" in status
    assert not uploads_dir(workspace).exists()
    with pytest.raises(LLMOpsError, match=r"secret\.txt: not a file uploaded"):
        data_tab.uploaded([str(secret)])


@pytest.mark.anyio
async def test_foreign_hosts_are_refused_on_the_browser_surfaces(workspace: Workspace) -> None:
    overrides = ("auth.open_arena=true", "auth.allowed_hosts=[llm.example.com]", "serve.host=10.1.2.3",
                 "auth.allowed_origins=[https://proxy.example:8443]")
    async with in_process(workspace, *overrides) as (_, http):
        token = {"Authorization": f"Bearer {workspace.admin_token()}"}
        for host in (FOREIGN, f"{FOREIGN}:8000", "localhost.evil.example", "127.0.0.2", "0.0.0.0:8000"):
            for method, path in (("GET", "/ui/"), ("POST", "/ui/login"), ("GET", "/arena/"),
                                 ("POST", "/v1/admin/rollback"), ("POST", "/ui/gradio_api/upload")):
                headers = {"Host": host, "Origin": f"http://{host}", **token}
                refused = await http.request(method, path, headers=headers)
                assert refused.status_code == 400, (host, path)
                assert "auth.allowed_hosts" in refused.json()["error"]["message"]
                assert "access-control-allow-origin" not in refused.headers
        for host in ("localhost:7860", "LOCALHOST", "127.0.0.1:8000", "[::1]:8000", "llm.example.com",
                     "proxy.example", "10.1.2.3:8000"):
            assert (await http.get("/ui/", headers={"Host": host})).status_code == 200, host
            assert (await http.get("/arena/", headers={"Host": host})).status_code == 200, host
        assert (await http.get("/v1/models", headers={"Host": FOREIGN})).status_code == 200


def test_the_allowed_hosts_are_localhost_the_bound_address_and_the_settings(workspace: Workspace) -> None:
    settings = load_settings(workspace.settings_path, ["serve.host=0.0.0.0", "auth.allowed_hosts=[Proxy.Example.]"])
    assert allowed_hosts(settings) == {"localhost", "127.0.0.1", "::1", "proxy.example"}
    assert "192.168.1.5" in allowed_hosts(settings, bind_host="192.168.1.5")
    assert "::" not in allowed_hosts(settings, bind_host="::")
    with pytest.raises(LLMOpsError, match=r"auth\.allowed_hosts.*without scheme or port"):
        open_workspace(workspace.root, ["auth.allowed_hosts=[https://llm.example.com]"])


async def _sign_in(http: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    http.cookies.clear()
    return await http.post("/ui/login", data={"username": user, "password": password})


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.anyio
async def test_failed_sign_ins_lock_the_user_out_for_a_cooldown(workspace: Workspace) -> None:
    for user in ("alice", "bob", "carol"):
        auth.add_user(workspace.settings_path, user, f"{user} pass")
    async with in_process(workspace) as (app, http):
        for _ in range(5):
            assert (await _sign_in(http, "alice", "wrong")).status_code == 400
        locked = await _sign_in(http, "alice", "alice pass")
        assert locked.status_code == 429 and "too many failed sign-ins" in locked.text and not http.cookies
        assert int(locked.headers["retry-after"]) >= 59
        battle = await http.post("/v1/arena/battles", json={"prompt": "q"}, headers=_basic("alice", "alice pass"))
        assert battle.status_code == 429 and "auth.sign_in_attempts" in battle.json()["error"]["message"]
        assert (await _sign_in(http, "bob", "bob pass")).status_code == 200
        assert (await _sign_in(http, "admin", workspace.admin_token())).status_code == 200
        for _ in range(5):
            wrong = await http.post("/v1/arena/battles", json={"prompt": "q"}, headers=_basic("carol", "x"))
            assert wrong.status_code == 401
        assert (await _sign_in(http, "carol", "carol pass")).status_code == 429
        for _ in range(8):
            assert (await _sign_in(http, "nobody", "x")).status_code == 400
        limiter: auth.SignInLimiter = app.state.serve.sign_ins
        limiter.clock = lambda: 1e12
        assert (await _sign_in(http, "alice", "alice pass")).status_code == 200


@pytest.mark.anyio
async def test_a_successful_sign_in_resets_the_count(workspace: Workspace) -> None:
    auth.add_user(workspace.settings_path, "dave", "dave pass")
    async with in_process(workspace) as (_, http):
        for _ in range(2):
            for _ in range(4):
                assert (await _sign_in(http, "dave", "wrong")).status_code == 400
            assert (await _sign_in(http, "dave", "dave pass")).status_code == 200


def test_the_cooldown_ends_and_grows_with_each_lockout(workspace: Workspace) -> None:
    now = [0.0]
    limiter = auth.SignInLimiter(attempts=3, cooldown_s=10, clock=lambda: now[0])
    for lockout, cooldown in enumerate((10, 20, 40, 80, 160, 160)):
        for _ in range(3):
            limiter.check("admin")
            limiter.record("admin", ok=False)
        with pytest.raises(auth.TooManyFailures) as refused:
            limiter.check("admin")
        assert refused.value.retry_after_s == cooldown, lockout
        now[0] += cooldown - 0.5
        with pytest.raises(auth.TooManyFailures):
            limiter.check("admin")
        now[0] += 0.5
        limiter.check("admin")
    now[0] += 100
    limiter.record("admin", ok=False)
    limiter.record("admin", ok=False)
    now[0] += 60
    limiter.record("admin", ok=False)
    limiter.check("admin")
    limiter.record("admin", ok=True)
    for _ in range(3):
        limiter.record("admin", ok=False)
    with pytest.raises(auth.TooManyFailures, match="try again in 10 s"):
        limiter.check("admin")
    for _ in range(5):
        assert not auth.sign_in(workspace, limiter, "nobody", "x")
    limiter.check("nobody")
