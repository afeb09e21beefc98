"""Every prerequisite of a loop tick (production model, eval set, judge, trigger), ok or why not; `loop status`
shows them and `loop tick` checks them before training: a candidate that cannot be evaluated is never trained."""

import json
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.data.eval_sets import publish_eval_set
from llmops.data.preferences import PairStats, PreferenceCollector
from llmops.loop import prerequisites
from llmops.loop.evaluate import EvalItem
from llmops.loop.prerequisites import Prerequisite, TickInputs, check
from llmops.loop.trigger import decide
from llmops.models import registry, rollouts
from llmops.settings import LoopSettings
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.workspace import Workspace, open_workspace

runner = CliRunner()
READY = TickInputs(production="chat-v1.0", eval_path=Path("eval.jsonl"), eval_items=[EvalItem("q?", "a.")],
                   eval_error="", judge_given=False, judge_error=None, voted_battles=0, trigger=None)


def _by_name(checks: list[Prerequisite]) -> dict[str, Prerequisite]:
    return {c.name: c for c in checks}


def test_all_ok_and_each_missing_one_named_with_its_fix() -> None:
    settings = LoopSettings()
    assert all(c.ok for c in check(READY, settings)) and [c.name for c in check(READY, settings)] == [
        "production", "eval_set", "judge"]
    no_production = _by_name(check(replace(READY, production=None), settings))["production"]
    assert not no_production.ok and "llmops models promote" in no_production.fix
    no_eval = _by_name(check(replace(READY, eval_path=None, eval_items=None), settings))
    assert (no_eval["eval_set"].ok, no_eval["eval_set"].detail) == (False, "no evaluation set")
    assert no_eval["eval_set"].fix == "run `llmops data eval-set`" and not no_eval["judge"].ok
    broken = _by_name(check(replace(READY, eval_items=None, eval_error="eval.jsonl:3: not valid JSON"), settings))
    assert not broken["eval_set"].ok and "eval.jsonl:3" in broken["eval_set"].detail
    no_reference = _by_name(check(replace(READY, eval_items=[EvalItem("q?"), EvalItem("r?", "b.")]), settings))
    assert no_reference["eval_set"].ok and not no_reference["judge"].ok
    assert "1 of 2 eval prompts lack a reference" in no_reference["judge"].detail


def test_llm_and_human_judges_and_a_judge_given_by_the_caller() -> None:
    llm = LoopSettings(judge="llm", judge_url="http://127.0.0.1:9/v1", judge_model="j")
    assert _by_name(check(READY, llm))["judge"].ok
    down = _by_name(check(replace(READY, judge_error="ConnectError: refused"), llm))["judge"]
    assert not down.ok and "unreachable: ConnectError" in down.detail
    assert not _by_name(check(READY, LoopSettings(judge="llm")))["judge"].ok  # no url or model
    human = LoopSettings(judge="human")
    assert not _by_name(check(READY, human))["judge"].ok
    assert _by_name(check(replace(READY, voted_battles=3), human))["judge"].ok
    assert _by_name(check(replace(READY, eval_path=None, eval_items=None, voted_battles=3), human))["eval_set"].ok
    given = replace(READY, eval_items=[EvalItem("q?")], judge_given=True)
    assert all(c.ok for c in check(given, LoopSettings()))


def test_the_trigger_is_listed_when_gathered() -> None:
    settings = LoopSettings(min_samples=5)
    waits = check(replace(READY, trigger=decide(PairStats(votes=2, valid_pairs=2), None, 0.0, settings)), settings)
    trigger = _by_name(waits)["trigger"]
    assert not trigger.ok and "2 new valid pairs" in trigger.detail
    fires = decide(PairStats(votes=5, valid_pairs=5), None, 0.0, settings)
    assert _by_name(check(replace(READY, trigger=fires), settings))["trigger"].ok


class _Models(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/v1/models"
        body = json.dumps({"data": [{"id": "judge"}]} if ok else {}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def judge_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_gather_asks_the_llm_judge_for_its_models(workspace: Workspace, judge_server: str) -> None:
    def judge_of(url: str) -> Prerequisite:
        ws = open_workspace(workspace.root, ["loop.judge=llm", f"loop.judge_url={url}", "loop.judge_model=judge"])
        return _by_name(check(prerequisites.gather(ws), ws.settings.loop))["judge"]

    assert judge_of(f"{judge_server}/v1").ok
    wrong_path = judge_of(f"{judge_server}/nope")
    assert not wrong_path.ok and "HTTP 404" in wrong_path.detail
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = judge_of(f"http://127.0.0.1:{port}/v1")  # nothing listens there
    assert not down.ok and "unreachable" in down.detail


def _fake_cli(tmp_path: Path, marker: Path) -> Path:
    path = tmp_path / "fake-llamafactory-cli"
    path.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _ready_to_train(workspace: Workspace, tmp_path: Path, marker: Path) -> Workspace:
    """Production, a trainer (fake: it leaves `marker`), a base folder and enough votes to trigger; no eval set."""
    base, chat = tmp_path / "base", tmp_path / "chat"
    base.mkdir()
    chat.mkdir()
    cli = _fake_cli(tmp_path, marker)
    ws = open_workspace(workspace.root, [f"train.base_model={base}", f"train.llamafactory_cli={cli}",
                                         "loop.min_samples=5"])
    registry.register_version(ws, kind="chat", stage="sft", parent=None, base_model=str(base), path=str(chat),
                              merged=True)
    rollouts.promote(ws, "chat-v1.0", by="cli")
    collector = PreferenceCollector(ws)
    for i in range(5):
        collector.collect_preference(f"q{i}", f"good {i}", f"bad {i}", "A")
    return ws


def test_tick_without_an_eval_set_fails_before_any_training(workspace: Workspace, tmp_path: Path) -> None:
    marker = tmp_path / "trainer-ran"
    ws = _ready_to_train(workspace, tmp_path, marker)
    args = ["loop", "tick", "-w", str(ws.root), *(arg for o in ws.overrides for arg in ("--set", o))]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "no evaluation set: run `llmops data eval-set`" in str(result.exception)
    assert not marker.exists() and LLaMAFactoryTrainer(ws).list_runs() == []
    assert [v.name for v in registry.list_versions(ws)] == ["chat-v1.0"]
    assert not (ws.stage_data_dir("dpo") / "prefs.jsonl").exists()  # not even exported
    publish_eval_set(ws, [{"prompt": "held?", "reference": "out."}], "prompts")
    result = runner.invoke(app, args)
    assert marker.exists() and "dpo run" in str(result.exception)  # now it trains (and the fake trainer fails)


def test_loop_status_shows_each_prerequisite(workspace: Workspace, tmp_path: Path) -> None:
    result = runner.invoke(app, ["loop", "status", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    for name in ("production", "eval_set", "judge", "trigger"):
        assert name in result.output
    assert result.output.count("missing") == 4 and "llmops data eval-set" in result.output
    ws = _ready_to_train(workspace, tmp_path, tmp_path / "unused")
    publish_eval_set(ws, [{"prompt": "held?", "reference": "out."}], "prompts")
    result = runner.invoke(app, ["loop", "status", "-w", str(ws.root), "--set", "loop.min_samples=5"])
    assert result.exit_code == 0 and "missing" not in result.output and result.output.count(" ok ") >= 4, (
        result.output)
    assert "DPO trigger fires" in result.output
