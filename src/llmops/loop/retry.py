"""Spec 6.1's branch "效果提升? 否 → 调整参数 → DPO": when the promotion gate rejects a candidate, train again on
the same preference data with the next of `loop.retry_recipes` (changes to train.dpo) until they are used up;
only then does the loop wait for new data.

Each training attempt is a `trained` event of the candidate it made (models/rollouts.py), holding the attempt: the
data it was trained on (dataset name and sha256), its number on that data and its recipe. The gate records the
same attempt with its evaluation (win rate, interval) in its `gate_failed` or `started` event, so
`llmops rollout history` shows every attempt. `next_recipe` decides from the attempts alone; other data (another
sha256) starts again at attempt 1, the same data never counts twice.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmops.loop.evaluate import Evaluation
from llmops.models import rollouts
from llmops.models.rollouts import Event
from llmops.settings import LoopSettings
from llmops.workspace import Workspace

TRAINED = "trained"
JUDGED = ("gate_failed", "started")

Recipe = dict[str, Any]
"""Changes to the typed train.dpo settings, e.g. {"num_train_epochs": 4}; {} is train.dpo as set."""


@dataclass(frozen=True)
class Attempt:
    """One DPO training on one preference dataset; `evaluation` is the gate's, None before it judged."""

    dataset: str
    data_sha256: str
    number: int
    recipe: Recipe
    evaluation: Evaluation | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "data_sha256": self.data_sha256, "number": self.number,
                "recipe": self.recipe}


def next_recipe(attempts: Sequence[Attempt], settings: LoopSettings) -> Recipe | None:
    """The recipe of the next attempt on the data of `attempts` (oldest first), or None: wait for new data.
    No attempt yet: {}; the last one not judged yet or through the gate: None; else the next retry recipe."""
    if not attempts:
        return {}
    last = attempts[-1].evaluation
    if last is None or last.passes(settings.gate_lower_bound):
        return None
    retries = len(attempts) - 1
    return dict(settings.retry_recipes[retries]) if retries < len(settings.retry_recipes) else None


def recipe_overrides(recipe: Recipe) -> list[str]:
    """The recipe as `key=value` overrides of train.dpo (checked like the settings by the training config)."""
    return [f"{key}={json.dumps(value)}" for key, value in recipe.items()]


def _attempt(event: Event, evaluations: dict[str, Evaluation]) -> Attempt:
    given = event.evidence["attempt"]
    return Attempt(str(given["dataset"]), str(given["data_sha256"]), int(given["number"]), dict(given["recipe"]),
                   evaluations.get(event.candidate))


def _attempts(workspace: Workspace) -> list[tuple[str, Attempt]]:
    """Every recorded attempt with its candidate, oldest first, each with its latest gate evaluation."""
    events = rollouts.history(workspace)
    evaluations = {e.candidate: Evaluation(**e.evidence["evaluation"]) for e in events
                   if e.event in JUDGED and "evaluation" in e.evidence}
    return [(e.candidate, _attempt(e, evaluations)) for e in events if e.event == TRAINED and "attempt" in e.evidence]


def attempt_of(workspace: Workspace, candidate: str) -> Attempt | None:
    """The attempt that trained `candidate` (None for a version the loop did not train)."""
    return next((a for name, a in reversed(_attempts(workspace)) if name == candidate), None)


def plan(workspace: Workspace, dataset: str, data_sha256: str) -> Attempt | None:
    """The next attempt on this data, or None when its attempts are used up (or the last one passed)."""
    attempts = [a for _, a in _attempts(workspace) if a.data_sha256 == data_sha256]
    recipe = next_recipe(attempts, workspace.settings.loop)
    return None if recipe is None else Attempt(dataset, data_sha256, len(attempts) + 1, recipe)


def retry_plan(workspace: Workspace) -> Attempt | None:
    """A retry on the data of the newest attempt, if the gate rejected it and a retry recipe is left."""
    recorded = _attempts(workspace)
    if not recorded:
        return None
    newest = recorded[-1][1]
    return plan(workspace, newest.dataset, newest.data_sha256)


def record(workspace: Workspace, candidate: str, attempt: Attempt, now: float | None = None) -> None:
    """`candidate` was trained by `attempt`: its `trained` event."""
    rollouts.note(workspace, candidate, TRAINED, {"attempt": attempt.as_dict()}, by="loop", now=now)
