"""When to train DPO (or KTO) again (spec 6.3.2), with the reasons, and the collection plan of spec 6.3.1 as progress.

The trigger fires when the *new, usable* examples of the loop's objective since the last DPO or KTO version reach
`loop.min_samples` and at least `loop.days_threshold` days have passed since that version; with none yet, every
vote is new and the age condition holds. For DPO the examples are the valid preference pairs (ties, both_bad,
identical or empty answers, duplicates and capped votes left out); for KTO they are the desirable and undesirable
examples of every vote and thumb (`data.kto`). `loop.objective: auto` picks one by the data mix (`choose_objective`).
"""

import time
from dataclasses import dataclass, field

from llmops.data.kto import KTOStats, kto_stats
from llmops.data.preferences import PairStats, pair_stats
from llmops.models import registry
from llmops.models.registry import PREFERENCE_STAGES
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
    objective: str = "dpo"  # dpo | kto: what the trigger counted and the loop trains
    kto: KTOStats = field(default_factory=KTOStats)

    @property
    def new_pairs(self) -> int:
        return self.stats.valid_pairs

    @property
    def new_examples(self) -> int:
        """The usable examples of the objective: valid pairs for DPO, desirable + undesirable ones for KTO."""
        return _new_examples(self.stats, self.kto, self.objective)

    def progress(self) -> dict[str, float]:
        """Share reached of each collection target of spec 6.3.1 (1.0 = reached)."""
        targets = {"min": self.min_samples, "target": self.target_samples, "optimal": self.optimal_samples}
        return {name: min(1.0, self.new_examples / goal) for name, goal in targets.items()}


def last_dpo_time(workspace: Workspace) -> float | None:
    """When the newest DPO or KTO version was registered; None before the first one."""
    times = [registry.newest_created_at(workspace, stage) for stage in PREFERENCE_STAGES]
    return max((t for t in times if t is not None), default=None)


def choose_objective(objective: str, pairs: int, kto_signals: int, pair_share: float) -> tuple[str, str]:
    """The objective to train (dpo | kto) and why: `objective` itself unless it is auto, which picks kto when the
    valid pairs are fewer than `pair_share` of the votes and thumbs that give KTO examples (DPO would learn from
    too small a part of the feedback), else dpo."""
    if objective != "auto":
        return objective, f"objective {objective} (loop.objective)"
    share = pairs / kto_signals if kto_signals else 1.0
    chosen = "kto" if share < pair_share else "dpo"
    return chosen, (f"objective auto → {chosen}: {pairs} pairs are {share:.0%} of {kto_signals} usable votes and "
                    f"thumbs ({'<' if chosen == 'kto' else '≥'} loop.auto_pair_share {pair_share:.0%})")


def _new_examples(stats: PairStats, kto: KTOStats, objective: str) -> int:
    """The usable examples of the objective: valid pairs for DPO, desirable + undesirable ones for KTO."""
    return kto.examples if objective == "kto" else stats.valid_pairs


def _count_reasons(stats: PairStats, kto: KTOStats, objective: str, settings: LoopSettings) -> list[str]:
    """The count of the objective's new examples against min_samples, and what was left out."""
    sign = "≥" if _new_examples(stats, kto, objective) >= settings.min_samples else "<"
    if objective == "kto":
        return [f"{kto.examples} new KTO examples ({kto.desirable} desirable, {kto.undesirable} undesirable) from "
                f"{kto.votes} votes and {kto.thumbs} thumbs ({sign} min_samples {settings.min_samples})",
                kto.left_out()]
    return [f"{stats.valid_pairs} new valid pairs from {stats.votes} votes ({sign} min_samples {settings.min_samples})",
            stats.left_out()]


def age_text(days: float) -> str:
    """An age as the trigger's reasons show it: in minutes under an hour, hours under a day, else days; never in
    e-notation."""
    if days < 1 / 24:
        return f"{days * 24 * 60:.0f} minutes"
    if days < 1:
        return f"{days * 24:.1f} hours"
    return f"{days:.3g} days" if days < 100 else f"{days:.0f} days"


def decide(stats: PairStats, last_dpo_at: float | None, now: float, settings: LoopSettings,
           kto: KTOStats | None = None) -> TriggerDecision:
    """The trigger's rule on counted examples: enough new usable examples of the objective (`loop.objective`, auto
    deciding on `stats` and `kto`) and an old enough last DPO or KTO version."""
    kto = kto or KTOStats()
    objective, why = choose_objective(settings.objective, stats.valid_pairs, kto.used_signals,
                                      settings.auto_pair_share)
    days = None if last_dpo_at is None else (now - last_dpo_at) / SECONDS_PER_DAY
    enough = _new_examples(stats, kto, objective) >= settings.min_samples
    old_enough = days is None or days >= settings.days_threshold
    reasons = [
        *_count_reasons(stats, kto, objective, settings),
        "no DPO or KTO version yet" if days is None else
        f"{age_text(days)} since the last DPO or KTO version ({'≥' if old_enough else '<'} "
        f"{settings.days_threshold:g} days)",
        why,
        f"counted: {stats.valid_pairs} valid pairs (DPO), {kto.examples} KTO examples",
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
        objective=objective,
        kto=kto,
    )


def should_trigger_dpo_training(workspace: Workspace, now: float | None = None) -> TriggerDecision:
    """Spec 6.3.2: whether to train DPO (or KTO, `decision.objective`) now, and why (`decision.fire`,
    `decision.reasons`)."""
    last = last_dpo_time(workspace)
    stats, kto = pair_stats(workspace, since=last), kto_stats(workspace, since=last)
    return decide(stats, last, time.time() if now is None else now, workspace.settings.loop, kto)
