"""The whole demo, as `make demo` runs it: the must-shows of the closed loop on the CPU (about 10–15 min)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmops.demo.run import DemoConfig, run_demo
from llmops.models import registry, rollouts
from llmops.serve.gateway import create_app
from llmops.ui.app import assemble
from llmops.workspace import open_workspace

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def test_demo_closes_the_loop(tmp_path: Path, tab_values: Callable[[list[Any]], dict[str, list[Any]]]) -> None:
    report = run_demo(DemoConfig(workspace=tmp_path / "demo", cache_dir=tmp_path / "cache"))

    ws = open_workspace(tmp_path / "demo")
    started = next(e for e in rollouts.history(ws, "chat-v1.1") if e.event == "started")
    evaluation = started.evidence["evaluation"]
    assert evaluation["ci_low"] > 0.5 and evaluation["comparisons"] == 150 * 4
    assert [e.event for e in rollouts.history(ws, "chat-v1.1")] == ["trained", "started", "advanced", "advanced",
                                                                   "advanced", "promoted"]
    broken = rollouts.history(ws, "chat-v1.2")
    assert [e.event for e in broken] == ["started", "rolled_back"]
    assert broken[-1].evidence["stage"] == 0
    assert "error_rate" in [b["metric"] for b in broken[-1].evidence["breaches"]]
    assert registry.aliases(ws)["production"] == "chat-v1.1"
    for chart in ("losses.png", "dpo_reward_accuracy.png", "win_rate.png", "rollout_1.png", "rollout_2.png"):
        assert (report.parent / chart).stat().st_size > 1000
    text = report.read_text()
    assert "chat-v1.1" in text and "rolled back" in text

    app = create_app(ws)
    try:
        values = tab_values(assemble(ws, app)[1])
    finally:
        app.state.serve.engine.close()
    assert "chat-v1.1" in values["models"][0]["name"].tolist()
    assert set(values["monitor"][0]["model"]) >= {"chat-v1.0", "chat-v1.1"}
