"""The online loop, one `tick()` at a time: rollout step, or trigger → export → DPO → evaluate → canary.

All state is in the workspace's database, so a restarted loop carries on where it stopped: a running
rollout resumes its stage; a DPO version registered but not yet evaluated (status `registered`) is
evaluated next; otherwise the trigger decides. The loop lock (`loop_lock`) makes it one process per store: a
`loop run` holds it for its life, a single tick (CLI, UI, demo) for the tick, and a tick refused the lock is
`busy`. A DPO run still running in the `runs` table (e.g. started by hand) blocks a new one.
"""

import fcntl
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai import OpenAI
from sqlalchemy import select

from llmops import db
from llmops.data.eval_sets import active_eval_set
from llmops.data.kto import export_kto
from llmops.data.preferences import export_preferences
from llmops.data.registry import get_dataset
from llmops.errors import LLMOpsError
from llmops.loop import prerequisites, retry, rollout
from llmops.loop.answers import EngineAnswers
from llmops.loop.evaluate import (
    EvalItem,
    Evaluation,
    Judge,
    ReferenceJudge,
    evaluate_model_improvement,
    load_test_set,
)
from llmops.loop.judges import HumanVoteJudge, LLMJudge
from llmops.loop.trigger import should_trigger_dpo_training
from llmops.models import registry, rollouts
from llmops.models.registry import PREFERENCE_STAGES, ModelVersion
from llmops.train.pipeline import train_dpo, train_kto
from llmops.train.runner import LLaMAFactoryTrainer
from llmops.train.runs import ACTIVE
from llmops.workspace import Workspace

LOCK_FILE = ".llmops/loop.lock"

TrainDPO = Callable[[Workspace, str, str, list[str]], ModelVersion]
"""(workspace, registered preference or KTO dataset, parent version, config overrides) → the registered version;
the loop's default is the pipeline's `train_dpo`, or `train_kto` for a KTO dataset (`loop.objective`)."""


@dataclass(frozen=True)
class TickResult:
    """What one tick did: busy | waiting | rollout_hold | rollout_advanced | rollout_promoted |
    rollout_rolled_back | gate_failed | rollout_started."""

    action: str
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)


@contextmanager
def loop_lock(workspace: Workspace) -> Iterator[db.SessionLock]:
    """Hold the loop's lock for the block; yields a false lock at once when another process holds it. Two locks,
    both released when the holder dies: the lock file in the workspace (`LOCK_FILE`: this machine) and, on
    PostgreSQL, the store's advisory lock `db.LOOP_LOCK` (every machine whose workspace names the store; `check()`
    tells whether it is still held)."""
    with _file_lock(workspace.root / LOCK_FILE) as here:
        if not here:
            yield db.SessionLock(False)
            return
        with db.session_lock(workspace.engine, db.LOOP_LOCK) as everywhere:
            yield everywhere


def lock_held_elsewhere(workspace: Workspace) -> str:
    """Why `loop_lock` was refused, naming the store."""
    return (f"another loop holds the loop lock of the store {db.redacted(workspace.database_url)} (a `llmops loop "
            f"run` or a tick, on this machine or another one on the same store)")


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    """An exclusive flock on `path` for the block (released by the OS when the holder dies); False when taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def dpo_run_in_progress(workspace: Workspace) -> str | None:
    """The id of a DPO or KTO training run whose process is still alive (a crashed one is marked finished here)."""
    query = select(db.runs.c.id).where(db.runs.c.stage.in_(PREFERENCE_STAGES), db.runs.c.status.in_(ACTIVE))
    with workspace.engine.connect() as conn:
        run_ids = [str(run_id) for run_id in conn.execute(query).scalars()]
    trainer = LLaMAFactoryTrainer(workspace)
    return next((run_id for run_id in run_ids if not trainer.get_status(run_id).finished), None)


def unevaluated_candidate(workspace: Workspace) -> ModelVersion | None:
    """The newest DPO or KTO version that was registered but never evaluated (a tick stopped before its gate)."""
    for version in reversed(registry.list_versions(workspace)):
        if version.stage in PREFERENCE_STAGES:
            return version if version.status == "registered" else None
    return None


def make_judge(workspace: Workspace, answers: EngineAnswers) -> Judge:
    """The judge `loop.judge` names: reference (ROUGE-L), llm (OpenAI-compatible endpoint) or human votes."""
    s = workspace.settings.loop
    if s.judge == "human":
        return HumanVoteJudge(workspace)
    if s.judge == "llm":
        if not s.judge_url or not s.judge_model:
            raise LLMOpsError("loop.judge is llm: set loop.judge_url and loop.judge_model")
        client = OpenAI(base_url=s.judge_url, api_key=os.environ.get(s.judge_api_key_env, "none"))
        return LLMJudge(answers, client, s.judge_model, s.eval_samples)
    return ReferenceJudge(answers, s.eval_samples)


def evaluate_candidate(workspace: Workspace, candidate: str, judge: Judge | None = None) -> Evaluation:
    """Candidate vs production on the held-out set (`active_eval_set`) by the configured judge."""
    s = workspace.settings.loop
    production = registry.resolve(workspace, "production").name
    eval_path = active_eval_set(workspace)
    items: list[EvalItem] = [] if s.judge == "human" and eval_path is None else (
        load_test_set(eval_path or workspace.root / s.eval_set, workspace.settings.data.max_file_bytes))
    if judge is not None:
        return evaluate_model_improvement(production, candidate, items, judge, s.bootstrap_samples)
    answers = EngineAnswers(workspace)
    try:
        return evaluate_model_improvement(production, candidate, items, make_judge(workspace, answers),
                                          s.bootstrap_samples)
    finally:
        answers.close()


def gate(workspace: Workspace, evaluation: Evaluation, now: float | None = None) -> TickResult:
    """The promotion gate: start the canary when the interval's lower bound clears `loop.gate_lower_bound`."""
    bound = workspace.settings.loop.gate_lower_bound
    candidate = evaluation.new_model
    attempt = retry.attempt_of(workspace, candidate)
    evidence = {**({} if attempt is None else {"attempt": attempt.as_dict()}),
                "evaluation": evaluation.as_dict(), "gate_lower_bound": bound}
    if not evaluation.passes(bound):
        rollouts.reject(workspace, candidate, "gate_failed", evidence, by="loop", now=now)
        return TickResult("gate_failed", f"{candidate}: win rate {evaluation.win_rate:.3f}, 95% interval "
                          f"[{evaluation.ci_low:.3f}, {evaluation.ci_high:.3f}] does not clear {bound}", evidence)
    started = rollouts.start_rollout(workspace, candidate, evidence, by="loop", now=now)
    return TickResult("rollout_started", f"{candidate}: win rate {evaluation.win_rate:.3f}, 95% interval "
                      f"[{evaluation.ci_low:.3f}, {evaluation.ci_high:.3f}]: gate passed (lower bound "
                      f"{evaluation.ci_low:.3f} > {bound}); canary at {started.traffic:.0%}", evidence)


@dataclass(frozen=True)
class GateRecord:
    """An evaluation the promotion gate decided on, as the rollout history recorded it."""

    evaluation: Evaluation
    lower_bound: float
    passed: bool
    at: float


def latest_gate(workspace: Workspace) -> GateRecord | None:
    """The newest evaluation of a candidate by the gate (`gate` records it with the rollout it started, or with the
    rejection), and the gate's decision; None before the first."""
    for event in reversed(rollouts.history(workspace)):
        recorded, bound = event.evidence.get("evaluation"), event.evidence.get("gate_lower_bound")
        if isinstance(recorded, dict) and isinstance(bound, int | float):
            evaluation = Evaluation(**recorded)
            return GateRecord(evaluation, float(bound), evaluation.passes(float(bound)), event.created_at)
    return None


def trainer_for(workspace: Workspace, dataset: str) -> Callable[..., ModelVersion]:
    """The pipeline function that trains a registered dataset: `train_kto` for a KTO dataset, else `train_dpo`."""
    return train_kto if get_dataset(workspace, dataset).kind == "kto" else train_dpo


def _new_data_attempt(workspace: Workspace, since: float | None, objective: str = "dpo") -> retry.Attempt | None:
    """The pairs (DPO) or KTO examples the trigger counted (votes and thumbs after `since`, the last DPO or KTO
    version: on-policy data of the model now in production) exported as a new dataset, and the attempt on it
    (None: its attempts are used up)."""
    export = export_kto(workspace, since) if objective == "kto" else export_preferences(workspace, since)
    snapshot = next(d for d in export.datasets if d.name == export.path.stem)
    return retry.plan(workspace, snapshot.name, snapshot.sha256)


def _train_new_candidate(workspace: Workspace, train: TrainDPO | None, now: float | None, judge_given: bool = False,
                         force: bool = False) -> ModelVersion | TickResult:
    """Train on new data when the trigger fires (or `force`), else retry the gate's last rejection with the next
    recipe."""
    decision = should_trigger_dpo_training(workspace)
    fire = decision.fire or force
    attempt = None if fire else retry.retry_plan(workspace)
    waiting = TickResult("waiting", "; ".join(decision.reasons), {"progress": decision.progress()})
    if not fire and attempt is None:
        return waiting
    prerequisites.require(workspace, judge_given)  # a candidate that cannot be evaluated is never trained
    running = dpo_run_in_progress(workspace)
    if running is not None:
        return TickResult("busy", f"DPO run {running} is still running")
    attempt = attempt or _new_data_attempt(workspace, decision.last_dpo_at, decision.objective)
    if attempt is None:
        return waiting
    production = registry.resolve(workspace, "production")
    overrides = [*workspace.settings.loop.dpo_overrides, *retry.recipe_overrides(attempt.recipe)]
    version = (train or trainer_for(workspace, attempt.dataset))(workspace, attempt.dataset, production.name, overrides)
    retry.record(workspace, version.name, attempt, now)
    return version


def tick(workspace: Workspace, train: TrainDPO | None = None, judge: Judge | None = None,
         now: float | None = None, force: bool = False) -> TickResult:
    """One step of the online loop (see the module's docstring) under the loop lock, `busy` when another loop holds
    it (so an operator's tick is refused while a `loop run` runs anywhere on the store); `force` trains on the pairs
    there are even when the trigger does not fire (an operator's "train DPO now")."""
    with loop_lock(workspace) as held:
        if not held:
            return TickResult("busy", lock_held_elsewhere(workspace))
        return _locked_tick(workspace, train, judge, now, force)


def _locked_tick(workspace: Workspace, train: TrainDPO | None = None, judge: Judge | None = None,
                 now: float | None = None, force: bool = False) -> TickResult:
    """`tick`'s step, the loop lock held by the caller."""
    step = rollout.step_rollout(workspace, now=now)
    if step is not None:
        return TickResult(f"rollout_{step.action}", f"{step.rollout.candidate}: {step.action}, "
                          f"traffic {step.rollout.traffic:.0%}", step.evidence)
    candidate = unevaluated_candidate(workspace)
    if candidate is None:
        trained = _train_new_candidate(workspace, train, now, judge is not None, force)
        if isinstance(trained, TickResult):
            return trained
        candidate = trained
    else:
        prerequisites.require(workspace, judge_given=judge is not None)
    return gate(workspace, evaluate_candidate(workspace, candidate.name, judge), now)


def parse_every(text: str) -> float:
    """`10m`, `30s`, `2h`, `1d` or plain seconds → seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    raw = text.strip().lower()
    number, unit = (raw[:-1], units[raw[-1]]) if raw and raw[-1] in units else (raw, 1.0)
    try:
        seconds = float(number) * unit
    except ValueError as exc:
        raise LLMOpsError(f"--every {text!r}: expected e.g. 10m, 30s, 2h") from exc
    if not math.isfinite(seconds) or seconds <= 0:
        raise LLMOpsError(f"--every {text!r}: must be a positive, finite time")
    return seconds


def run_forever(workspace: Workspace, every_s: float, on_tick: Callable[[TickResult], None],
                max_ticks: int | None = None, on_start: Callable[[], None] = lambda: None) -> None:
    """Tick every `every_s` seconds (measured from each tick's start), holding the loop lock throughout: one loop
    per store (LLMOpsError when another holds it; `on_start` is called once this one does). An LLMOpsError in a
    tick is reported, not fatal; a lock lost before a tick (its Postgres connection dropped) stops the loop with an
    LLMOpsError, as another loop may have taken it."""
    with loop_lock(workspace) as held:
        if not held:
            raise LLMOpsError(f"{lock_held_elsewhere(workspace)}: not starting a second loop; stop that one first "
                              f"(a killed one frees the lock by itself)")
        on_start()
        _tick_forever(workspace, every_s, on_tick, max_ticks, held)


def _tick_forever(workspace: Workspace, every_s: float, on_tick: Callable[[TickResult], None],
                  max_ticks: int | None, held: db.SessionLock) -> None:
    done = 0
    while max_ticks is None or done < max_ticks:
        try:
            held.check()
        except LLMOpsError as exc:
            raise LLMOpsError(f"the loop stopped before tick {done + 1}: it lost the loop lock of the store "
                              f"{db.redacted(workspace.database_url)}: {exc}; start it again (it resumes from the "
                              f"store)") from exc
        started = time.monotonic()
        try:
            on_tick(_locked_tick(workspace))
        except LLMOpsError as exc:
            on_tick(TickResult("error", str(exc)))
        done += 1
        if max_ticks is None or done < max_ticks:
            time.sleep(max(0.0, every_s - (time.monotonic() - started)))
