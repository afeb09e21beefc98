"""What a loop tick needs before it trains: a production model, an evaluation set, a reachable judge (and, for
`loop status`, a firing trigger), each ok or why not, with the command that fixes it.

`check` is a pure function over gathered inputs (`TickInputs`); `gather` reads the workspace (and asks an LLM
judge's endpoint for its models, with a short timeout). `require` raises before training when anything but the
trigger is missing, so a candidate that cannot be evaluated is never trained.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select

from llmops import db
from llmops.data import eval_sets
from llmops.errors import LLMOpsError
from llmops.loop.evaluate import EvalItem, load_test_set
from llmops.loop.trigger import TriggerDecision, should_trigger_dpo_training
from llmops.models import registry
from llmops.settings import LoopSettings
from llmops.workspace import Workspace

JUDGE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Prerequisite:
    name: str  # production | eval_set | judge | trigger
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class TickInputs:
    """What the checks look at, gathered from the workspace."""

    production: str | None
    eval_path: Path | None
    eval_items: list[EvalItem] | None  # None when the file could not be read (see eval_error)
    eval_error: str
    judge_given: bool  # a caller's own judge (the demo's): the configured one is not asked
    judge_error: str | None  # llm judge: why its endpoint did not answer; None when it did (or is not asked)
    voted_battles: int
    trigger: TriggerDecision | None  # None: not part of this check (a tick decides it itself)


def _eval_set(inputs: TickInputs, judge: str) -> Prerequisite:
    if inputs.eval_path is None:
        if judge == "human" and not inputs.judge_given:
            return Prerequisite("eval_set", True, "none (the human judge uses every voted battle)")
        return Prerequisite("eval_set", False, "no evaluation set", eval_sets.FIX)
    if inputs.eval_items is None:
        return Prerequisite("eval_set", False, inputs.eval_error, f"fix the file or {eval_sets.FIX}")
    references = sum(bool(item.reference) for item in inputs.eval_items)
    return Prerequisite("eval_set", True, f"{inputs.eval_path}: {len(inputs.eval_items)} prompts, "
                        f"{references} with a reference")


def _judge(inputs: TickInputs, settings: LoopSettings) -> Prerequisite:
    if inputs.judge_given:
        return Prerequisite("judge", True, "given by the caller")
    if settings.judge == "llm":
        if not settings.judge_url or not settings.judge_model:
            return Prerequisite("judge", False, "llm judge without loop.judge_url / loop.judge_model",
                                "`--set loop.judge_url=… --set loop.judge_model=…` in the workspace settings")
        if inputs.judge_error is not None:
            return Prerequisite("judge", False, f"llm judge at {settings.judge_url} unreachable: {inputs.judge_error}",
                                "start the judge's server or fix loop.judge_url")
        return Prerequisite("judge", True, f"llm judge {settings.judge_model} at {settings.judge_url} answers")
    if settings.judge == "human":
        if inputs.voted_battles == 0:
            return Prerequisite("judge", False, "human judge: no voted arena battles yet",
                                "serve the arena (`llmops serve`) and collect votes")
        return Prerequisite("judge", True, f"human judge: {inputs.voted_battles} voted arena battles")
    if inputs.eval_items is None:
        return Prerequisite("judge", False, "reference judge: no evaluation set to take reference answers from",
                            eval_sets.FIX)
    items = inputs.eval_items
    missing = sum(not item.reference for item in items)
    if missing:
        return Prerequisite("judge", False, f"reference judge: {missing} of {len(items)} eval prompts lack a "
                            "reference answer", f"{eval_sets.FIX} (a held-out SFT share has references)")
    return Prerequisite("judge", True, f"reference judge: all {len(items)} eval prompts have a reference")


def check(inputs: TickInputs, settings: LoopSettings) -> list[Prerequisite]:
    """Each prerequisite of a tick, ok or why not."""
    production = (Prerequisite("production", True, inputs.production) if inputs.production is not None else
                  Prerequisite("production", False, "no production model", "`llmops models promote <version>`"))
    checks = [production, _eval_set(inputs, settings.judge), _judge(inputs, settings)]
    if inputs.trigger is not None:
        decision = inputs.trigger
        checks.append(Prerequisite("trigger", decision.fire, "; ".join(decision.reasons),
                                   "" if decision.fire else "collect more arena votes or wait"))
    return checks


def _production(workspace: Workspace) -> str | None:
    try:
        return registry.resolve(workspace, "production").name
    except LLMOpsError:
        return None


def _judge_error(settings: LoopSettings) -> str | None:
    """Why the llm judge's endpoint does not list its models (None: it does, or no llm judge is configured)."""
    if settings.judge != "llm" or not settings.judge_url:
        return None
    key = os.environ.get(settings.judge_api_key_env, "none")
    try:
        response = httpx.get(f"{settings.judge_url.rstrip('/')}/models", timeout=JUDGE_TIMEOUT_S,
                             headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.is_success else f"HTTP {response.status_code} from /models"


def _voted_battles(workspace: Workspace) -> int:
    query = select(func.count()).select_from(db.battles).where(db.battles.c.vote.is_not(None))
    with workspace.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def gather(workspace: Workspace, judge_given: bool = False, with_trigger: bool = True) -> TickInputs:
    """The inputs of `check`, read from the workspace."""
    settings = workspace.settings.loop
    path = eval_sets.active_eval_set(workspace)
    items, error = None, ""
    if path is not None:
        try:
            items = load_test_set(path, workspace.settings.data.max_file_bytes)
        except LLMOpsError as exc:
            error = str(exc)
    return TickInputs(
        production=_production(workspace), eval_path=path, eval_items=items, eval_error=error,
        judge_given=judge_given, judge_error=None if judge_given else _judge_error(settings),
        voted_battles=_voted_battles(workspace),
        trigger=should_trigger_dpo_training(workspace) if with_trigger else None)


def require(workspace: Workspace, judge_given: bool = False) -> None:
    """Raise when a tick could not evaluate what it trains: every prerequisite but the trigger must be ok."""
    missing = [p for p in check(gather(workspace, judge_given, with_trigger=False), workspace.settings.loop)
               if not p.ok]
    if missing:
        raise LLMOpsError("the loop cannot evaluate a candidate, so it trains none: " + "; ".join(
            f"{p.detail}: {p.fix}" for p in missing))
