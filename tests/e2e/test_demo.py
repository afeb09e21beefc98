"""The whole demo, as `make demo` runs it: the must-shows of the closed loop on the CPU, turned twice."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmops.data.preferences import pair_stats
from llmops.data.registry import get_dataset
from llmops.demo.run import DemoConfig, run_demo
from llmops.models import registry, rollouts
from llmops.serve.gateway import create_app
from llmops.ui.app import assemble
from llmops.workspace import open_workspace

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def test_demo_closes_the_loop(tmp_path: Path, tab_values: Callable[[list[Any]], dict[str, list[Any]]]) -> None:
    report = run_demo(DemoConfig(workspace=tmp_path / "demo", cache_dir=tmp_path / "cache"))

    ws = open_workspace(tmp_path / "demo")
    for candidate, baseline in (("chat-v1.1", "chat-v1.0"), ("chat-v1.2", "chat-v1.1")):
        history = rollouts.history(ws, candidate)
        assert [e.event for e in history] == ["trained", "started", "advanced", "advanced", "advanced", "promoted"]
        evaluation = history[1].evidence["evaluation"]
        assert evaluation["old_model"] == baseline and evaluation["ci_low"] > 0.5
        assert evaluation["comparisons"] == 150 * 4
    second = registry.get_version(ws, "chat-v1.2")
    assert second.parent == "chat-v1.1"
    round_two = get_dataset(ws, history[0].evidence["attempt"]["dataset"]).rows  # the new votes' pairs only
    assert round_two == pair_stats(ws, since=registry.get_version(ws, "chat-v1.1").created_at).valid_pairs
    assert 0 < round_two < pair_stats(ws).valid_pairs
    broken = rollouts.history(ws, "chat-v1.3")
    assert [e.event for e in broken] == ["started", "rolled_back"]
    assert broken[-1].evidence["stage"] == 0
    assert "error_rate" in [b["metric"] for b in broken[-1].evidence["breaches"]]
    assert registry.aliases(ws)["production"] == "chat-v1.2"
    for chart in ("losses.png", "dpo_reward_accuracy.png", "win_rate.png", "rollout_1.png", "rollout_2.png",
                  "rollout_3.png"):
        assert (report.parent / chart).stat().st_size > 1000
    text = report.read_text()
    assert "## Votes per round" in text and "| share used |" in text
    assert "| 2 | chat-v1.2 | chat-v1.1 |" in text and "rolled back" in text

    app = create_app(ws)
    try:
        values = tab_values(assemble(ws, app)[1])
    finally:
        app.state.serve.engine.close()
    assert {"chat-v1.1", "chat-v1.2"} <= set(values["models"][0]["name"].tolist())
    assert set(values["monitor"][0]["model"]) >= {"chat-v1.0", "chat-v1.1", "chat-v1.2"}
