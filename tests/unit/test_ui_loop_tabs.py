"""The A/B arena with two chosen models, the Loop & rollout tab's controls and tables, and the monitor's win rate:
each tab's handlers (found by the elem_id of the button a browser clicks) run in process against the gateway."""

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import gradio as gr
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fakes import Echo
from llmops import db
from llmops.data.preferences import PreferenceCollector
from llmops.errors import LLMOpsError
from llmops.loop import flywheel
from llmops.loop.evaluate import Comparison, EvalItem, Evaluation
from llmops.loop.trigger import should_trigger_dpo_training
from llmops.models import registry, rollouts
from llmops.models.metrics import version_metrics
from llmops.serve.gateway import create_app
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.ui import arena_tab, loop_tab, rollout_view
from llmops.ui.app import assemble
from llmops.ui.loop_tab import TrainNow
from llmops.workspace import Workspace, open_workspace

TabValues = Callable[[list[Any]], dict[str, list[Any]]]
CHAT = ("chat-v1.0", "chat-v1.1", "chat-v1.2")


def _register(workspace: Workspace, count: int = 3) -> None:
    for name in CHAT[:count]:
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="/p",
                                  merged=True, version=name.removeprefix("chat-"))
    registry.set_alias(workspace, "production", CHAT[0])


@pytest.fixture
def gateway(workspace: Workspace) -> Iterator[FastAPI]:
    _register(workspace)
    app = create_app(workspace, backends={name: Echo() for name in CHAT})
    yield app
    app.state.serve.engine.close()


def handler(blocks: gr.Blocks, elem_id: str) -> Callable[..., Any]:
    """The function a click on the component `elem_id` runs."""
    for function in blocks.fns.values():
        for block_id, event in function.targets:
            if event == "click" and getattr(blocks.blocks.get(block_id), "elem_id", None) == elem_id:
                assert function.fn is not None
                return function.fn
    raise AssertionError(f"no click handler on #{elem_id}")


def within(app: FastAPI, steps: Callable[[], Awaitable[None]]) -> None:
    async def run() -> None:
        async with app.router.lifespan_context(app):
            await steps()

    asyncio.run(run())


def test_arena_offers_servable_chat_versions_production_first(workspace: Workspace, tab_values: TabValues) -> None:
    assert arena_tab.default_pair(workspace, []) == (None, None)
    _register(workspace)
    registry.register_version(workspace, kind="completion", stage="pt", parent=None, base_model="b", path="/c",
                              merged=True)
    registry.set_status(workspace, "chat-v1.1", "rejected")
    assert arena_tab.chat_versions(workspace) == ["chat-v1.2", "chat-v1.0"]
    first, second = tab_values(assemble(workspace)[1])["arena"][:2]
    assert (first["choices"], first["value"], second["value"]) == (["chat-v1.2", "chat-v1.0"], "chat-v1.0",
                                                                   "chat-v1.2")
    registry.set_alias(workspace, "production", "chat-v1.2")
    assert arena_tab.default_pair(workspace, ["chat-v1.2"]) == ("chat-v1.2", "chat-v1.2")


def test_a_battle_of_the_chosen_pair_is_voted_and_rated(workspace: Workspace, gateway: FastAPI) -> None:
    blocks, _ = assemble(workspace, gateway)
    generate, vote = handler(blocks, "arena-generate"), handler(blocks, "vote-a")

    async def steps() -> None:
        empty_id, _, _, refused, *locked = await generate("  ", CHAT[1], CHAT[2], False)
        assert empty_id == "" and refused == "❌ question: type a question for the two models first"
        assert not any(b["interactive"] for b in locked)
        battle_id, answer_a, answer_b, status, *buttons = await generate("which cable?", CHAT[1], CHAT[2], False)
        assert answer_a["label"] == f"Answer A — {CHAT[1]}" and answer_a["value"].startswith(CHAT[1])
        assert answer_b["value"].startswith(CHAT[2]) and all(b["interactive"] for b in buttons)
        assert status == "which answer is better?"
        status, *_, ratings, votes, _pairs, _progress, _reasons = await vote(battle_id)
        assert f"A wins — A was **{CHAT[1]}**, B was **{CHAT[2]}**" in status and votes == 1
        assert ratings["model"].tolist() == [CHAT[1], CHAT[2]] and ratings["rating"].tolist() == [
            round(r, 1) for r in ratings["rating"]]
        blind_id, blind_a, _, _, *_ = await generate("which cable?", CHAT[0], CHAT[2], True)
        assert blind_a["label"] == "Answer A"
        revealed, shown_a, *_ = await vote(blind_id)
        assert shown_a["label"] in (f"Answer A — {CHAT[0]}", f"Answer A — {CHAT[2]}") and "A was" in revealed
        alone = (await generate("which cable?", CHAT[1], CHAT[1], True))[3]
        assert f"both answers are from **{CHAT[1]}**" in alone and "only battles of two different versions" in alone

    within(gateway, steps)
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(db.battles.c.model_a, db.battles.c.model_b, db.battles.c.vote)).all()
    assert rows[0] == (CHAT[1], CHAT[2], "a") and {rows[1].model_a, rows[1].model_b} == {CHAT[0], CHAT[2]}
    won = version_metrics(workspace, CHAT[1])
    assert (won.win_rate, won.battles) == (1.0, 1) and version_metrics(workspace, CHAT[2]).battles == 2


def test_the_battle_api_takes_a_chosen_pair(workspace: Workspace) -> None:
    _register(workspace)
    registry.set_status(workspace, "chat-v1.2", "rejected")
    public = open_workspace(workspace.root, ["auth.open_arena=true"])
    app = create_app(public, backends={name: Echo() for name in CHAT})

    async def steps() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            async def battle(**body: Any) -> httpx.Response:
                return await http.post("/v1/arena/battles", json={"prompt": "q", **body})

            kept = await battle(model_a="chat-v1.1", model_b="production", shuffle=False)
            assert kept.status_code == 200
            assert (kept.json()["model_a"], kept.json()["model_b"]) == ("chat-v1.1", "chat-v1.0")
            assert kept.json()["response_a"].startswith("chat-v1.1")
            blind = (await battle(model_a="chat-v1.1", model_b="chat-v1.0")).json()
            assert "model_a" not in blind
            assert (await battle(model_a="chat-v1.1")).status_code == 400
            assert "not a servable chat version" in (await battle(model_a="chat-v1.2", model_b="chat-v1.0")).text
            assert (await battle(model_a="chat-v9.0", model_b="chat-v1.0")).status_code == 404

    within(app, steps)


def test_rollout_controls_and_the_readable_history(workspace: Workspace, gateway: FastAPI,
                                                   tab_values: TabValues) -> None:
    blocks, sections = assemble(workspace, gateway)
    loaded = tab_values(sections)["loop"]
    assert loaded[6]["choices"] == ["chat-v1.2", "chat-v1.1"] and loaded[6]["value"] == "chat-v1.2"
    assert loaded[7]["value"] == "chat-v1.2" and loop_tab.RUNNING_CANDIDATE not in loaded[7]["choices"]
    with workspace.engine.begin() as conn:
        conn.execute(db.requests.insert(), [
            {"id": f"r{i}", "model": "chat-v1.2", "created_at": 4e9, "latency_ms": 10.0 / 3, "ok": i != 0,
             "error": ""} for i in range(3)])

    async def steps() -> None:
        message, *shown = await handler(blocks, "rollout-start")("chat-v1.2")
        assert "rollout of chat-v1.2 started at 5%" in message and "stage 1 of 4" in shown[4]
        assert shown[7]["value"] == "" and shown[7]["choices"][0] == loop_tab.RUNNING_CANDIDATE
        message, *shown = await handler(blocks, "rollout-advance")()
        assert "stage 2, 20%" in message and shown[5] == pytest.approx(0.2)
        message, *shown = await handler(blocks, "rollout-promote")("")
        assert "promoted chat-v1.2 to production (previous: chat-v1.0)" in message and "no rollout running" in shown[4]
        message, *shown = await handler(blocks, "rollout-advance")()
        assert message == "❌ rollout: none is running"

    within(gateway, steps)
    table = rollout_view.events_table(rollouts.history(workspace))
    assert table["event"].tolist() == ["promoted", "advanced", "started"] and set(table["by"]) == {"ui"}
    advanced = table.set_index("event").loc["advanced"]
    assert (advanced["requests"], advanced["error_rate"], advanced["latency_p99_ms"]) == (3, 0.3333, 3.3)
    chart = rollout_view.guardrail_series(rollouts.history(workspace), ("error_rate",))
    assert chart[["decision", "value"]].values.tolist() == [[2, 0.3333]]
    assert rollout_view.traffic_series(rollouts.history(workspace))["traffic"].tolist() == [0.05, 0.2, 1.0]


def test_the_latest_gate_evaluation_is_shown_with_its_decision(workspace: Workspace) -> None:
    _register(workspace)
    evaluation = Evaluation("chat-v1.0", "chat-v1.1", "fixed", 0.71234, 0.61234, 0.8, 0.7, 0.3, 1.0, 40, 40, 28,
                            11, 1)
    flywheel.gate(workspace, evaluation)
    text = rollout_view.evaluation_text(workspace)
    assert "win rate **0.712**, 95% interval [0.612, 0.800]" in text and "gate **passed**" in text
    rejected = Evaluation("chat-v1.0", "chat-v1.2", "fixed", 0.5, 0.4, 0.6, 0.5, 0.5, 1.0, 40, 40, 20, 20, 0)
    rollouts.rollback(workspace, by="cli")
    flywheel.gate(workspace, rejected)
    assert "**chat-v1.2**" in rollout_view.evaluation_text(workspace) and "gate **failed**" in (
        rollout_view.evaluation_text(workspace))
    rows = rollout_view.events_table(rollouts.history(workspace)).set_index("event")
    assert (rows.loc["gate_failed", "win_rate"], rows.loc["started", "ci_low"]) == (0.5, 0.612)


def test_train_dpo_now_trains_before_the_trigger_fires(workspace: Workspace) -> None:
    _register(workspace, 1)
    heldout = workspace.root / "data/llmops/eval/heldout.jsonl"
    heldout.parent.mkdir(parents=True)
    heldout.write_text("".join(json.dumps({"prompt": f"held {i}"}) + "\n" for i in range(10)))
    for i in range(3):
        PreferenceCollector(workspace).collect_preference(f"q{i}", f"good {i}", f"bad {i}", "A")
    assert not should_trigger_dpo_training(workspace).fire
    gate_open = threading.Event()
    trained: list[str] = []

    def train(ws: Workspace, dataset: str, parent: str, overrides: list[str]) -> registry.ModelVersion:
        gate_open.wait(30)
        trained.append(dataset)
        return registry.register_version(ws, kind="chat", stage="dpo", parent=parent, base_model="b", path="a",
                                         merged=False)

    class Wins:
        name = "wins"

        def compare(self, old_model: str, new_model: str, items: list[EvalItem]) -> list[Comparison]:
            return [Comparison(item.prompt, 1.0, 0.0) for item in items]

    job = TrainNow(LLaMAFactoryTrainer(workspace), lambda: flywheel.tick(workspace, train, Wins(), force=True))
    assert job.start().startswith("started")
    with pytest.raises(LLMOpsError, match="still running"):
        job.start()
    assert "running" in job.status()
    gate_open.set()
    deadline = time.monotonic() + 30
    while job.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.finished_unseen() and not job.finished_unseen()
    assert "**rollout_started**" in job.status() and trained and trained[0].startswith("prefs_")
    assert "gate **passed**" in rollout_view.evaluation_text(workspace)


def test_trigger_status_names_the_loops_objective(workspace: Workspace) -> None:
    """With loop.objective kto the tab shows the KTO trigger and progress in KTO examples, as `llmops loop status`."""
    _, text, progress = rollout_view.trigger_status(open_workspace(workspace.root, ["loop.objective=kto"]))
    assert "KTO trigger **waits**" in text and "DPO trigger" not in text
    assert all(label.endswith("KTO examples)") for label in progress)
    _, text, progress = rollout_view.trigger_status(workspace)
    assert "DPO trigger **waits**" in text and all(label.endswith("pairs)") for label in progress)
