import pytest

from llmops.data.preferences import PairStats, PreferenceCollector
from llmops.loop.trigger import SECONDS_PER_DAY, age_text, decide, last_dpo_time, should_trigger_dpo_training
from llmops.models import registry
from llmops.settings import LoopSettings
from llmops.workspace import Workspace, open_workspace


def test_decide_needs_enough_pairs_and_age() -> None:
    s = LoopSettings(min_samples=100, days_threshold=7)
    now = 100 * SECONDS_PER_DAY
    assert decide(PairStats(votes=150, valid_pairs=100), None, now, s).fire
    assert not decide(PairStats(votes=150, valid_pairs=99), None, now, s).fire
    assert decide(PairStats(valid_pairs=100), now - 7 * SECONDS_PER_DAY, now, s).fire
    late = decide(PairStats(valid_pairs=500), now - 6.9 * SECONDS_PER_DAY, now, s)
    assert not late.fire and late.days_since_last == pytest.approx(6.9)
    assert "6.9 days since the last DPO or KTO version (< 7 days)" in late.reasons[2]
    fresh = decide(PairStats(valid_pairs=500), now - 200, now, s)
    assert fresh.reasons[2] == "3 minutes since the last DPO or KTO version (< 7 days)"  # not 0.00231 days
    assert age_text(0.5) == "12.0 hours" and age_text(1234.4) == "1234 days"


def test_decide_reports_what_was_left_out_and_progress() -> None:
    stats = PairStats(votes=200, valid_pairs=150, ties=20, both_bad=10, identical=5, empty=5, duplicates=7, capped=3)
    d = decide(stats, None, 0.0, LoopSettings())
    assert d.reasons[0] == "150 new valid pairs from 200 votes (≥ min_samples 100)"
    assert d.reasons[1] == ("left out: 20 ties, 10 both_bad, 5 identical, 5 empty, 7 duplicates, "
                            "3 over the daily cap")
    assert d.reasons[2] == "no DPO or KTO version yet"
    assert d.progress() == {"min": 1.0, "target": 0.5, "optimal": pytest.approx(0.3)}


def _vote(collector: PreferenceCollector, i: int, choice: str = "A", b: str | None = None) -> None:
    collector.collect_preference(f"question {i}", f"good answer {i}", b if b is not None else f"bad {i}", choice)


@pytest.mark.store
def test_trigger_counts_only_new_valid_pairs(workspace: Workspace) -> None:
    ws = open_workspace(workspace.root, ["loop.min_samples=3", "loop.days_threshold=1"])
    collector = PreferenceCollector(ws)
    for i in range(3):
        _vote(collector, i)
    _vote(collector, 9, "tie")
    _vote(collector, 10, "both_bad")
    _vote(collector, 11, "B", b="good answer 11")
    first = should_trigger_dpo_training(ws)
    assert first.fire and first.new_pairs == 3 and first.last_dpo_at is None
    assert (first.stats.ties, first.stats.both_bad, first.stats.identical) == (1, 1, 1)

    registry.register_version(ws, kind="chat", stage="sft", parent=None, base_model="b", path="p", merged=True)
    registry.register_version(ws, kind="chat", stage="dpo", parent="chat-v1.0", base_model="b", path="q",
                              merged=False)
    last = last_dpo_time(ws)
    assert last is not None
    _vote(collector, 20)
    _vote(collector, 21)
    collector.collect_preference("question 20", "good answer 20", "bad 20", "A", user="someone")
    soon = should_trigger_dpo_training(ws, now=last + 60)
    assert not soon.fire
    assert (soon.new_pairs, soon.stats.duplicates) == (2, 1)
    _vote(collector, 22)
    assert not should_trigger_dpo_training(ws, now=last + 0.5 * SECONDS_PER_DAY).fire
    assert should_trigger_dpo_training(ws, now=last + SECONDS_PER_DAY).fire
