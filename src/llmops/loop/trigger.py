"""When to train DPO again (spec 6.3.2), with the reasons, and the collection plan of spec 6.3.1 as progress.

The trigger fires when the *new, valid* preference pairs since the last DPO version (ties, both_bad,
identical or empty answers, duplicates and capped votes left out) reach `loop.min_samples` and at least
`loop.days_threshold` days have passed since that version; with no DPO version yet, every vote is new and
the age condition holds.
"""

import time
from dataclasses import dataclass

from llmops.data.preferences import PairStats, pair_stats
from llmops.models import registry
from llmops.settings import LoopSettings
from llmops.workspace import Workspace

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class TriggerDecision:
    fire: bool
    reasons: list[str]
    stats: PairStats
    min_samples: int
    target_samples: int
    optimal_samples: int
    days_threshold: float
    last_dpo_at: float | None
    days_since_last: float | None

    @property
    def new_pairs(self) -> int:
        return self.stats.valid_pairs

    def progress(self) -> dict[str, float]:
        """Share reached of each collection target of spec 6.3.1 (1.0 = reached)."""
        targets = {"min": self.min_samples, "target": self.target_samples, "optimal": self.optimal_samples}
        return {name: min(1.0, self.new_pairs / goal) for name, goal in targets.items()}


def last_dpo_time(workspace: Workspace) -> float | None:
    """When the newest DPO version was registered; None before the first one."""
    return registry.newest_created_at(workspace, "dpo")


def decide(stats: PairStats, last_dpo_at: float | None, now: float, settings: LoopSettings) -> TriggerDecision:
    """The trigger's rule on counted pairs: enough new valid pairs and an old enough last DPO version."""
    days = None if last_dpo_at is None else (now - last_dpo_at) / SECONDS_PER_DAY
    enough = stats.valid_pairs >= settings.min_samples
    old_enough = days is None or days >= settings.days_threshold
    dropped = (f"left out: {stats.ties} ties, {stats.both_bad} both_bad, {stats.identical} identical, "
               f"{stats.empty} empty, {stats.duplicates} duplicates, {stats.capped} over the daily cap")
    reasons = [
        f"{stats.valid_pairs} new valid pairs from {stats.votes} votes "
        f"({'≥' if enough else '<'} min_samples {settings.min_samples})",
        dropped,
        "no DPO version yet" if days is None else
        f"{days:.3g} days since the last DPO version ({'≥' if old_enough else '<'} {settings.days_threshold:g})",
    ]
    return TriggerDecision(
        fire=enough and old_enough,
        reasons=reasons,
        stats=stats,
        min_samples=settings.min_samples,
        target_samples=settings.target_samples,
        optimal_samples=settings.optimal_samples,
        days_threshold=settings.days_threshold,
        last_dpo_at=last_dpo_at,
        days_since_last=days,
    )


def should_trigger_dpo_training(workspace: Workspace, now: float | None = None) -> TriggerDecision:
    """Spec 6.3.2: whether to train DPO now, and why (`decision.fire`, `decision.reasons`)."""
    last = last_dpo_time(workspace)
    stats = pair_stats(workspace, since=last)
    return decide(stats, last, time.time() if now is None else now, workspace.settings.loop)
