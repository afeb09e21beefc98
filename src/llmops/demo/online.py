"""The demo's online half: votes through the gateway, trigger → DPO → evaluation → canary, and a broken
candidate. Every decision goes through the loop's own functions (`flywheel.tick`, the rollout guardrails)."""

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.progress import Progress

from llmops.data.registry import DatasetRecord, get_dataset
from llmops.demo.report import LoopRound, Scenario, TimelinePoint
from llmops.demo.simulated_users import SimulatedUsers
from llmops.demo.traffic import run_arena, send_traffic
from llmops.errors import LLMOpsError
from llmops.inference.engine import InferenceModel
from llmops.inference.loading import load_version
from llmops.inference.types import Sampling
from llmops.loop import flywheel
from llmops.loop.evaluate import Evaluation, Judge
from llmops.loop.trigger import TriggerDecision, should_trigger_dpo_training
from llmops.models import registry, rollouts
from llmops.models.registry import ModelVersion
from llmops.serve.faults import create_faulty_upstream
from llmops.serve.server import BackgroundServer
from llmops.train.pipeline import ProgressCallback
from llmops.workspace import Workspace

MAX_BATCH = 200
MAX_ROUNDS = 40


def collect_votes(ws: Workspace, url: str, prompts: Sequence[str], users: SimulatedUsers, sampling: Sampling,
                  console: Console, first: int = 300, step: int = 100, rounds: int = 12) -> tuple[int, str]:
    """Arena battles through the gateway, voted by the simulated users, in rounds until the DPO trigger fires
    (prompts are reused once the pool is spent: new samples, new pairs); the battles fought and what they gave.
    The arena battles production against itself (no candidate is set): on-policy pairs of the model in
    production, which is the next DPO run's parent and reference."""
    votes: Counter[str] = Counter()
    done = 0
    for number in range(rounds):
        size = first if number == 0 else step
        batch = [prompts[(done + i) % len(prompts)] for i in range(size)]
        with Progress(console=console, transient=True) as bar:
            votes.update(run_arena(url, batch, users, sampling, concurrency=16, progress=bar))
        done += size
        if should_trigger_dpo_training(ws).fire:
            break
    stats = should_trigger_dpo_training(ws).stats
    return done, f"{done} battles, votes {dict(sorted(votes.items()))}; {stats.valid_pairs} new valid pairs"


def trigger_report(ws: Workspace) -> tuple[TriggerDecision, str]:
    """What the trigger counted since the last DPO version, and why it fires; LLMOpsError when it does not."""
    decision = should_trigger_dpo_training(ws)
    if not decision.fire:
        raise LLMOpsError("demo: the DPO trigger did not fire: " + "; ".join(decision.reasons))
    return decision, "fires: " + "; ".join(decision.reasons)


def dpo_tick(ws: Workspace, judge: Judge, on_progress: ProgressCallback) -> tuple[flywheel.TickResult, Evaluation]:
    """One loop tick: export → DPO → register → evaluate by `judge` → gate (→ canary)."""

    def train(workspace: Workspace, dataset: str, parent: str, overrides: list[str]) -> ModelVersion:
        return flywheel.trainer_for(workspace, dataset)(workspace, dataset, parent, overrides, on_progress)

    result = flywheel.tick(ws, train, judge)
    if "evaluation" not in result.evidence:
        raise LLMOpsError(f"demo: the loop tick did not train and evaluate: {result.action}: {result.detail}")
    return result, Evaluation(**result.evidence["evaluation"])


def _trained_dataset(ws: Workspace, result: flywheel.TickResult) -> DatasetRecord:
    attempt = result.evidence.get("attempt")
    if not isinstance(attempt, dict):
        raise LLMOpsError(f"demo: the loop tick recorded no training attempt: {result.action}")
    return get_dataset(ws, str(attempt["dataset"]))


def round_record(ws: Workspace, number: int, battles: int, decision: TriggerDecision, result: flywheel.TickResult,
                 outcome: str) -> LoopRound:
    """The report's row of a turn of the loop: what the trigger counted, the rows of the dataset the tick's candidate
    was trained on (preference pairs, or KTO examples: a vote gives two) and the objective (that dataset's kind)."""
    dataset, stats, kto = _trained_dataset(ws, result), decision.stats, decision.kto
    evaluation = Evaluation(**result.evidence["evaluation"])
    if dataset.kind == "kto":
        return LoopRound(number, battles, kto.signals, dataset.rows, kto.ties, stats.both_bad, evaluation, outcome,
                         "kto", kto.used_signals)
    return LoopRound(number, battles, stats.votes, dataset.rows, stats.ties, stats.both_bad, evaluation, outcome)


def _point(ws: Workspace, started_at: float, result: flywheel.TickResult) -> TimelinePoint:
    candidate = result.evidence.get("candidate", {})
    latest = rollouts.latest_rollout(ws)
    return TimelinePoint(
        seconds=time.time() - started_at, traffic=latest.traffic if latest else 0.0,
        error_rate=float(candidate.get("error_rate", 0.0)), latency_p99_ms=float(candidate.get("latency_p99_ms", 0.0)),
        feedback_score=candidate.get("feedback_score"), action=result.action.removeprefix("rollout_"),
    )


def drive_rollout(ws: Workspace, url: str, prompts: Sequence[str], users: SimulatedUsers, sampling: Sampling,
                  title: str, first_user: int, say: Callable[[str], None]) -> tuple[Scenario, int]:
    """Simulated traffic in rounds, a loop tick after each, until the rollout is promoted or rolled back."""
    running = rollouts.current_rollout(ws)
    if running is None:
        raise LLMOpsError("demo: no rollout is running")
    scenario = Scenario(title, running.candidate, "running", [TimelinePoint(0.0, running.traffic, 0.0, 0.0, None,
                                                                            "started")])
    user = first_user
    for _ in range(MAX_ROUNDS):
        current = rollouts.current_rollout(ws)
        if current is None:
            break
        needed = ws.settings.loop.stage(current.stage_index).min_requests or 0
        count = min(MAX_BATCH, math.ceil(needed / current.traffic * 1.05))
        sent = send_traffic(url, prompts, users, sampling, count, user, concurrency=8)
        user += count
        result = flywheel.tick(ws)
        scenario.timeline.append(_point(ws, running.started_at, result))
        say(f"{count} chats ({sent.errors} failed, by version {sent.by_model}) → {result.detail}")
        if result.action in ("rollout_promoted", "rollout_rolled_back"):
            scenario.outcome = result.action.removeprefix("rollout_").replace("_", " ")
            break
    else:
        raise LLMOpsError(f"demo: rollout of {running.candidate} still running after {MAX_ROUNDS} rounds")
    scenario.events = [event.__dict__ for event in rollouts.history(ws, running.candidate)]
    return scenario, user


def start_broken_candidate(ws: Workspace, engine: InferenceModel,
                           error_rate: float) -> tuple[BackgroundServer, ModelVersion]:
    """Production's weights behind an upstream that fails `error_rate` of requests, registered and rolled out."""
    production = registry.resolve(ws, "production")
    load_version(engine, production)
    server = BackgroundServer(create_faulty_upstream(engine, production.name, error_rate=error_rate))
    server.start()
    scenario = f"production's weights behind an upstream failing {error_rate:.0%} of requests"
    version = registry.register_version(
        ws, kind="chat", stage="dpo", parent=production.name, base_model=production.base_model,
        path=production.path, merged=production.merged, upstream_url=server.url, metrics={"scenario": scenario},
    )
    rollouts.start_rollout(ws, version.name, {"reason": "demo: deliberately broken candidate", "scenario": scenario},
                           by="demo")
    return server, version


def traffic_after_rollback(url: str, prompts: Sequence[str], users: SimulatedUsers, sampling: Sampling,
                           first_user: int, broken: str) -> str:
    """More chats after the rollback: none of them may reach the broken version."""
    sent = send_traffic(url, prompts, users, sampling, 100, first_user, concurrency=8)
    reached = sent.by_model.get(broken, 0)
    if reached:
        raise LLMOpsError(f"demo: {reached} requests reached {broken} after its rollback")
    return f"{sent.requests} chats after the rollback, {reached} to {broken}"
