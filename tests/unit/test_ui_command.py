"""`llmops ui`: serves the gateway app with the UI mounted at /ui and opens the browser at its URL."""

import threading
import webbrowser
from typing import Any

import uvicorn
from typer.testing import CliRunner

from llmops.cli import app
from llmops.workspace import Workspace


def test_ui_command_serves_the_ui_and_opens_the_browser(workspace: Workspace, monkeypatch: Any) -> None:
    opened: list[str] = []
    seen = threading.Event()
    served: dict[str, Any] = {}

    def fake_open(url: str) -> bool:
        opened.append(url)
        seen.set()
        return True

    def fake_run(server: uvicorn.Server) -> None:
        served.update(host=server.config.host, port=server.config.port,
                      routes=[getattr(r, "path", "") for r in server.config.app.routes])
        server.started = True
        assert seen.wait(30)
        server.config.app.state.serve.engine.close()

    monkeypatch.setattr(webbrowser, "open", fake_open)
    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr(uvicorn.Config, "configure_logging", lambda _: None)  # no handlers on the runner's stderr
    result = CliRunner().invoke(app, ["ui", "-w", str(workspace.root), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert opened == ["http://127.0.0.1:8123/ui/"]
    assert served["host"] == "127.0.0.1" and served["port"] == 8123
    assert "/ui" in served["routes"]
    assert "http://127.0.0.1:8123/ui/" in result.output


def test_ui_command_needs_a_workspace(tmp_path: Any) -> None:
    result = CliRunner().invoke(app, ["ui", "-w", str(tmp_path / "nowhere"), "--no-browser"])
    assert result.exit_code != 0
    assert "is not an llmops workspace" in str(result.exception)
