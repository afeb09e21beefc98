"""Canary under injected faults, through the real HTTP gateway: a candidate whose upstream fails requests,
adds latency, or whose answers users dislike is rolled back within its first stage, every time (two user
populations each)."""

from pathlib import Path

import httpx
import pytest

from llmops.inference.engine import InferenceModel
from llmops.loop import rollout
from llmops.models import registry, rollouts
from llmops.serve.faults import create_faulty_upstream
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer
from llmops.workspace import Workspace, init_workspace, open_workspace

pytestmark = pytest.mark.integration
SETTINGS = ["loop.stage_min_requests=100000", "loop.guardrail_min_requests=4", "loop.max_latency_p99_ms=300"]
FAULTS = {  # kind → (faulty upstream arguments, the metric that must be breached)
    "error_rate": ({"error_rate": 0.4}, "error_rate"),
    "latency": ({"extra_latency_ms": 600.0}, "latency_p99_ms"),
    "feedback_drop": ({}, "feedback_score"),
}


def _chat_round(url: str, first_user: int, dislike: str) -> int:
    """40 users chat once each and rate the answer: thumbs down for `dislike`'s answers, up otherwise.
    Returns how many answers `dislike` served."""
    served = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        for user in range(first_user, first_user + 40):
            body = {"model": "production", "user": f"u{user}", "max_tokens": 4, "temperature": 0,
                    "messages": [{"role": "user", "content": "Can I return the desk lamp?"}]}
            response = client.post("/v1/chat/completions", json=body)
            if response.status_code != 200:
                continue
            answer = response.json()
            served += answer["model"] == dislike
            score = -1 if answer["model"] == dislike else 1
            client.post("/v1/feedback", json={"completion_id": answer["id"], "score": score, "user": f"u{user}"})
    return served


def _workspace(root: Path, model: Path) -> Workspace:
    ws = init_workspace(root)
    registry.register_version(ws, kind="chat", stage="sft", parent=None, base_model=str(model), path=str(model),
                              merged=True)
    registry.set_alias(ws, "production", "chat-v1.0")
    return open_workspace(root, SETTINGS)


@pytest.mark.parametrize("population", [1, 2])
@pytest.mark.parametrize("kind", list(FAULTS))
def test_faulty_candidate_is_rolled_back_in_its_stage(tmp_path: Path, tiny_model_dir: Path, kind: str,
                                                      population: int) -> None:
    fault, metric = FAULTS[kind]
    ws = _workspace(tmp_path / "ws", tiny_model_dir)
    engine = InferenceModel(max_batch_size=8)
    engine.load_model("chat-v1.0", str(tiny_model_dir))
    upstream = create_faulty_upstream(engine, "chat-v1.0", **fault)
    try:
        with BackgroundServer(upstream) as bad, BackgroundServer(create_app(ws, engine=engine)) as gateway:
            candidate = registry.register_version(ws, kind="chat", stage="dpo", parent="chat-v1.0",
                                                  base_model=str(tiny_model_dir), path=str(tiny_model_dir),
                                                  merged=True, upstream_url=bad.url)
            rollouts.start_rollout(ws, candidate.name, by="cli")
            dislike = candidate.name if kind == "feedback_drop" else ""
            step, first_user = None, population * 100000
            while step is None or step.action == "hold":
                assert first_user < population * 100000 + 2000, "the candidate never got enough traffic to be judged"
                _chat_round(gateway.url, first_user, dislike)
                first_user += 40
                step = rollout.step_rollout(ws)
            served_after = _chat_round(gateway.url, 900000, candidate.name)
    finally:
        engine.close()
    assert step.action == rollouts.ROLLED_BACK
    event = rollouts.history(ws, candidate.name)[-1]
    assert event.event == "rolled_back" and event.traffic == 0.0 and event.evidence["stage"] == 0
    assert metric in [b["metric"] for b in event.evidence["breaches"]]
    assert registry.aliases(ws)["production"] == "chat-v1.0"
    assert served_after == 0
