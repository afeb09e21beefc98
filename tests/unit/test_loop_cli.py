import json

from typer.testing import CliRunner

from llmops import db
from llmops.cli import app
from llmops.data.preferences import PreferenceCollector
from llmops.models import registry
from llmops.workspace import Workspace

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_rollout_commands(workspace: Workspace) -> None:
    w = str(workspace.root)
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p",
                              merged=True)
    registry.register_version(workspace, kind="chat", stage="dpo", parent="chat-v1.0", base_model="b", path="q",
                              merged=False)
    registry.set_alias(workspace, "production", "chat-v1.0")
    assert "no rollout yet" in _invoke("rollout", "status", "-w", w)
    assert "5% of traffic" in _invoke("rollout", "start", "chat-v1.1", "-w", w)
    status = _invoke("rollout", "status", "-w", w)
    assert "chat-v1.1" in status and "stage 1/4" in status and "running" in status
    assert "hold" in _invoke("rollout", "step", "-w", w)
    assert "promoted" in _invoke("rollout", "promote", "-w", w, "--reason", "looks good")
    assert registry.aliases(workspace)["production"] == "chat-v1.1"
    assert "reverted" in _invoke("rollout", "rollback", "-w", w)
    assert registry.aliases(workspace)["production"] == "chat-v1.0"
    events = [json.loads(line) for line in _invoke("rollout", "history", "-w", w, "--json").splitlines()]
    assert [(e["event"], e["evidence"].get("reason")) for e in events] == [
        ("started", "manual"), ("promoted", "looks good"), ("reverted", "manual")]
    assert "promoted" in _invoke("rollout", "history", "-w", w)
    failed = runner.invoke(app, ["rollout", "promote", "-w", w])
    assert failed.exit_code != 0


def test_loop_status_and_tick(workspace: Workspace) -> None:
    w = str(workspace.root)
    collector = PreferenceCollector(workspace)
    for i in range(3):
        collector.collect_preference(f"q{i}", "yes", "no", "A")
    collector.collect_preference("q9", "yes", "no", "tie")
    status = _invoke("loop", "status", "-w", w)
    assert "waits" in status and "3 new valid pairs from 4 votes" in status and "1 ties" in status
    assert "fires" in _invoke("loop", "status", "-w", w, "--set", "loop.min_samples=3")
    assert "waiting" in _invoke("loop", "tick", "-w", w)
    assert _invoke("loop", "run", "-w", w, "--every", "1s", "--ticks", "1").count("waiting") == 1


def test_loop_evaluate_with_human_votes(workspace: Workspace) -> None:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p",
                                  merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    with workspace.engine.begin() as conn:
        for i in range(30):
            conn.execute(db.battles.insert().values(
                id=f"b{i}", created_at=0.0, prompt=f"p{i}", model_a="chat-v2.0", model_b="chat-v1.0",
                response_a="x", response_b="y", vote="a", voted_at=0.0))
    output = _invoke("loop", "evaluate", "chat-v2.0", "-w", str(workspace.root), "--set", "loop.judge=human")
    assert "win rate" in output and "1.000" in output and "passes (> 0.5)" in output and "30 (30)" in output
