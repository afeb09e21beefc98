"""Preference store: votes are idempotent and durable; exports drop ties, identical, empty, duplicates, capped."""

import json
import threading
import time

import pytest
from sqlalchemy import func, select

from llmops import db
from llmops.data.formats import validate_file
from llmops.data.preferences import PairStats, PreferenceCollector, export_preferences, pair_stats
from llmops.data.registry import get_dataset
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.store


def _count_votes(workspace: Workspace) -> int:
    with workspace.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(db.votes)).scalar_one())


def test_collect_is_idempotent_by_id_and_by_content(workspace: Workspace) -> None:
    collector = PreferenceCollector(workspace)
    first = collector.collect_preference("q", "long answer", "short", "a", {"model_a": "v1.0"}, user="u1")
    assert collector.collect_preference("q", "long answer", "short", "A", {"model_a": "v1.0"}, user="u1") == first
    assert collector.collect_preference("q", "x", "y", "B", vote_id="battle-1") == "battle-1"
    assert collector.collect_preference("q", "other", "text", "tie", vote_id="battle-1") == "battle-1"
    assert _count_votes(workspace) == 2


def test_acknowledged_votes_survive_a_new_engine(workspace: Workspace) -> None:
    PreferenceCollector(workspace).collect_preference("q", "a", "b", "both_bad", user="u")
    workspace.engine.dispose()
    assert pair_stats(open_workspace(workspace.root)).both_bad == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"choice": "C"}, "choice"),
    ({"choice": "A", "question": 3}, "question"),
    ({"choice": "A", "metadata": ["x"]}, "metadata"),
    ({"choice": "A", "metadata": {"t": object()}}, "metadata"),
])
def test_bad_votes_are_refused(workspace: Workspace, kwargs: dict[str, object], message: str) -> None:
    args = {"question": "q", "response_a": "a", "response_b": "b", **kwargs}
    with pytest.raises(LLMOpsError, match=message):
        PreferenceCollector(workspace).collect_preference(**args)  # type: ignore[arg-type]
    assert _count_votes(workspace) == 0


def _cast_votes(workspace: Workspace) -> None:
    collector = PreferenceCollector(workspace)
    collector.collect_preference("q1", "good", "bad", "A", {"model_a": "v1.0", "model_b": "v1.1"}, user="u1")
    collector.collect_preference("q2", "bad", "good", "B", user="u1")
    collector.collect_preference("q3", "x", "y", "tie", user="u2")
    collector.collect_preference("q4", "x", "y", "both_bad", user="u2")
    collector.collect_preference("q5", "same", " same ", "A", user="u2")
    collector.collect_preference("q6", "", "y", "B", user="u2")
    collector.collect_preference("q1", "good", "bad", "A", vote_id="dup", user="u3")
    collector.collect_many([{"question": "q7", "response_a": "p", "response_b": "r", "choice": "a", "user": "u1"}])


def test_pair_stats_counts_every_reason(workspace: Workspace) -> None:
    _cast_votes(workspace)
    assert pair_stats(workspace) == PairStats(votes=8, valid_pairs=3, ties=1, both_bad=1, identical=1, empty=1,
                                              duplicates=1, capped=0)
    capped = open_workspace(workspace.root, ["data.max_votes_per_user_per_day=2"])
    assert pair_stats(capped).capped == 1
    assert pair_stats(workspace, since=time.time() + 1) == PairStats()


def test_pair_stats_since_counts_only_newer_votes(workspace: Workspace) -> None:
    PreferenceCollector(workspace).collect_preference("old", "a", "b", "A")
    cut = time.time()
    time.sleep(0.01)
    PreferenceCollector(workspace).collect_preference("new", "a", "b", "B")
    assert pair_stats(workspace, since=cut).valid_pairs == 1


def test_export_writes_spec_and_trl_files_and_registers(workspace: Workspace) -> None:
    _cast_votes(workspace)
    report = export_preferences(workspace)
    assert report.stats.valid_pairs == 3
    pairs = [json.loads(line) for line in report.latest_path.read_text().splitlines()]
    assert pairs[0]["conversations"] == [{"role": "user", "content": "q1"}]
    assert pairs[0]["chosen"] == {"role": "assistant", "content": "good"}
    assert pairs[0]["rejected"] == {"role": "assistant", "content": "bad"}
    assert pairs[0]["metadata"]["model_b"] == "v1.1"
    assert pairs[1]["chosen"]["content"] == "good"
    assert report.path.read_text() == report.latest_path.read_text()
    assert report.path.name.startswith("prefs_") and report.path.parent == workspace.stage_data_dir("dpo")
    assert validate_file(report.trl_path, "trl").ok
    info = json.loads(workspace.dataset_info_path.read_text())
    assert info["prefs"]["ranking"] is True and info["prefs"]["file_name"] == "dpo/prefs.jsonl"
    assert report.trl_path.stem not in info
    assert get_dataset(workspace, report.trl_path.stem).format == "trl"


def test_export_without_pairs_writes_nothing(workspace: Workspace) -> None:
    PreferenceCollector(workspace).collect_preference("q", "a", "b", "tie")
    with pytest.raises(LLMOpsError, match=r"^no valid preference pairs to export: 1 votes, left out: 1 ties, 0 "
                       r"both_bad, 0 identical, 0 empty, 0 duplicates, 0 over the daily cap \(and pairs on held-out "
                       r"prompts\)$"):
        export_preferences(workspace)
    assert list(workspace.stage_data_dir("dpo").iterdir()) == []


def test_concurrent_votes_are_all_stored(workspace: Workspace) -> None:
    collector = PreferenceCollector(workspace)

    def vote(worker: int) -> None:
        for i in range(25):
            collector.collect_preference(f"q{worker}-{i}", "a", "b", "A", vote_id=f"{worker}-{i % 20}")

    threads = [threading.Thread(target=vote, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _count_votes(workspace) == 80


def test_collect_many_joins_the_callers_transaction(workspace: Workspace) -> None:
    collector = PreferenceCollector(workspace)
    votes = [{"question": "q", "response_a": "a", "response_b": "b", "choice": "B", "vote_id": "battle-7"},
             {"question": "q", "response_a": "a", "response_b": "b", "choice": "B", "vote_id": "battle-7"}]
    with pytest.raises(RuntimeError), workspace.engine.begin() as conn:
        collector.collect_many(votes, conn)
        raise RuntimeError("the caller's transaction fails")
    assert _count_votes(workspace) == 0
    with workspace.engine.begin() as conn:
        assert collector.collect_many(votes, conn) == ["battle-7", "battle-7"]
    assert _count_votes(workspace) == 1
