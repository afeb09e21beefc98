"""Rollouts driven by real traffic through the HTTP gateway: a healthy candidate is promoted stage by stage
(surviving a restart of the loop and of the gateway), a broken one is rolled back in its first stage."""

from pathlib import Path

import pytest

from llmops.demo.simulated_users import SimulatedUsers
from llmops.demo.traffic import send_traffic
from llmops.inference.engine import InferenceModel
from llmops.inference.types import Sampling
from llmops.loop import flywheel
from llmops.models import registry, rollouts
from llmops.serve.faults import create_faulty_upstream
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer
from llmops.workspace import Workspace, init_workspace, open_workspace

pytestmark = pytest.mark.integration
PROMPTS = ["Can I return the desk lamp?", "How do I charge the power bank?", "保温杯多少钱？"]
SAMPLING = Sampling(max_tokens=8, temperature=1.0, top_p=0.9, top_k=0, repetition_penalty=1.0)
SETTINGS = ["loop.rollout_stages=[0.05, 0.2, 0.5, 1.0]", "loop.stage_min_requests=4", "loop.guardrail_min_requests=4",
            "loop.max_feedback_drop=1.0", "loop.max_latency_p99_ms=60000"]


def _workspace(root: Path, model: Path) -> Workspace:
    ws = init_workspace(root)
    for _ in range(2):
        registry.register_version(ws, kind="chat", stage="sft", parent=None, base_model=str(model), path=str(model),
                                  merged=True)
    registry.set_alias(ws, "production", "chat-v1.0")
    return open_workspace(root, SETTINGS)


def _round(ws: Workspace, url: str, first_user: int) -> flywheel.TickResult:
    running = rollouts.current_rollout(ws)
    assert running is not None
    count = int(10 / running.traffic) + 20
    send_traffic(url, PROMPTS, SimulatedUsers(noise=0.5, seed=first_user), SAMPLING, count, first_user)
    return flywheel.tick(ws)


def test_healthy_candidate_is_promoted_across_a_restart(tmp_path: Path, tiny_model_dir: Path) -> None:
    ws = _workspace(tmp_path / "ws", tiny_model_dir)
    rollouts.start_rollout(ws, "chat-v2.0", by="cli")
    engine = InferenceModel(max_batch_size=16)
    actions, user = [], 0
    try:
        with BackgroundServer(create_app(ws, engine=engine)) as gateway:
            for _ in range(2):
                actions.append(_round(ws, gateway.url, user).action)
                user += 1000
        restarted = open_workspace(ws.root, SETTINGS)
        resumed = rollouts.current_rollout(restarted)
        assert resumed is not None and (resumed.stage_index, resumed.traffic) == (2, 0.5)
        with BackgroundServer(create_app(restarted, engine=engine)) as gateway:
            for _ in range(2):
                actions.append(_round(restarted, gateway.url, user).action)
                user += 1000
    finally:
        engine.close()
    assert actions == ["rollout_advanced"] * 3 + ["rollout_promoted"]
    assert registry.aliases(ws) == {"production": "chat-v2.0", "previous": "chat-v1.0"}
    events = rollouts.history(ws, "chat-v2.0")
    assert [e.traffic for e in events] == [0.05, 0.2, 0.5, 1.0, 1.0]
    assert all(e.evidence["candidate"]["requests"] >= 4 for e in events[1:])


def test_broken_candidate_is_rolled_back_in_its_first_stage(tmp_path: Path, tiny_model_dir: Path) -> None:
    ws = _workspace(tmp_path / "ws", tiny_model_dir)
    engine = InferenceModel(max_batch_size=16)
    engine.load_model("chat-v1.0", str(tiny_model_dir))
    faulty = create_faulty_upstream(engine, "chat-v1.0", error_rate=0.5)
    try:
        with BackgroundServer(faulty) as bad, BackgroundServer(create_app(ws, engine=engine)) as gateway:
            broken = registry.register_version(ws, kind="chat", stage="dpo", parent="chat-v1.0",
                                               base_model=str(tiny_model_dir), path=str(tiny_model_dir),
                                               merged=True, upstream_url=bad.url)
            rollouts.start_rollout(ws, broken.name, by="cli")
            ws = open_workspace(ws.root, [*SETTINGS, "loop.stage_min_requests=1000"])
            result = _round(ws, gateway.url, 0)
            after = send_traffic(gateway.url, PROMPTS, SimulatedUsers(), SAMPLING, 60, 5000)
    finally:
        engine.close()
    assert result.action == "rollout_rolled_back"
    assert registry.aliases(ws)["production"] == "chat-v1.0"
    event = rollouts.history(ws, broken.name)[-1]
    assert event.event == "rolled_back" and event.traffic == 0.0 and event.evidence["stage"] == 0
    assert [b["metric"] for b in event.evidence["breaches"]] == ["error_rate"]
    assert event.evidence["candidate"]["error_rate"] > 0.05
    assert after.errors == 0 and after.by_model == {"chat-v1.0": 60}
