"""Every vote and thumb as training data: LLaMA-Factory's KTO format (sharegpt `messages` + a `kto_tag` column).

A decisive vote (a/b) gives its chosen answer as desirable and the other as undesirable, on the same prompt; a
both_bad vote gives both answers as undesirable; a thumb up/down on a served completion (its messages and answer
are in `requests`) gives that answer as desirable/undesirable for its messages. Ties are left out. As in the pair
export (`data/preferences.py`), identical answers, empty texts, malformed conversations, duplicate examples and
signals over a user's daily cap are left out, and every reason is counted. Each example keeps its provenance
(vote or thumb, its id, the vote or score, the user, the model that answered).
"""

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from llmops import db
from llmops.data.eval_sets import without_held_out
from llmops.data.formats import read_records, record_problems
from llmops.data.preferences import votes_since
from llmops.data.registry import DatasetRecord, publish_dataset, timestamped_path
from llmops.errors import LLMOpsError
from llmops.votes import Vote, parse_vote
from llmops.workspace import Workspace


@dataclass(frozen=True)
class KTOStats:
    """What the votes and thumbs since a time give: desirable and undesirable examples, and what was left out."""

    votes: int = 0
    thumbs: int = 0
    used_signals: int = 0  # votes and thumbs that gave at least one example
    desirable: int = 0
    undesirable: int = 0
    ties: int = 0
    identical: int = 0
    empty: int = 0
    malformed: int = 0
    duplicates: int = 0  # examples
    capped: int = 0
    held_out: int = 0  # examples on a held-out evaluation prompt

    @property
    def signals(self) -> int:
        return self.votes + self.thumbs

    @property
    def examples(self) -> int:
        return self.desirable + self.undesirable

    def left_out(self) -> str:
        """What was left out and why, for people."""
        return (f"left out: {self.ties} ties, {self.identical} identical, {self.empty} empty, {self.malformed} "
                f"malformed, {self.duplicates} duplicates, {self.capped} over the daily cap, {self.held_out} held out")


@dataclass(frozen=True)
class KTOExportReport:
    stats: KTOStats
    path: Path  # the snapshot kto/kto_<ts>.jsonl
    latest_path: Path  # kto/kto.jsonl
    datasets: list[DatasetRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Signal:
    """One vote or thumb: its prompt and each answer it judges as (text, desirable, model)."""

    source: str  # vote | thumb
    id: str
    kind: str  # a | b | both_bad | tie | up | down
    user: str
    created_at: float
    prompt: list[dict[str, str]]
    answers: list[tuple[str, bool, str]]


def _vote_signal(vote: Any) -> Signal:
    choice = parse_vote(vote.choice, f"votes.choice of {vote.id!r}")
    meta = vote.meta or {}
    a = (vote.response_a, choice is Vote.A, str(meta.get("model_a", "")))
    b = (vote.response_b, choice is Vote.B, str(meta.get("model_b", "")))
    answers = [] if choice is Vote.TIE else ([b, a] if choice is Vote.B else [a, b])
    return Signal("vote", vote.id, choice.value, vote.user, vote.created_at,
                  [{"role": "user", "content": vote.question}], answers)


def _thumbs_since(workspace: Workspace, since: float | None) -> list[Any]:
    fb, req = db.feedback, db.requests
    query = (select(fb.c.completion_id, fb.c.score, fb.c.user, fb.c.created_at, fb.c.model, req.c.messages,
                    req.c.answer).join(req, req.c.id == fb.c.completion_id).order_by(fb.c.created_at, fb.c.id))
    if since is not None:
        query = query.where(fb.c.created_at > since)
    with workspace.engine.connect() as conn:
        return list(conn.execute(query).all())


def _thumb_signal(thumb: Any) -> Signal:
    messages = thumb.messages if isinstance(thumb.messages, list) else []
    return Signal("thumb", thumb.completion_id, "up" if thumb.score > 0 else "down", thumb.user, thumb.created_at,
                  [dict(m) for m in messages if isinstance(m, dict)], [(thumb.answer, thumb.score > 0, thumb.model)])


def signals_since(workspace: Workspace, since: float | None = None) -> Iterator[Signal]:
    """The votes, then the thumbs, created after `since` (all when None), oldest first."""
    yield from (_vote_signal(vote) for vote in votes_since(workspace, since))
    yield from (_thumb_signal(thumb) for thumb in _thumbs_since(workspace, since))


def _example(signal: Signal, answer: str, desirable: bool, model: str) -> dict[str, Any]:
    return {
        "messages": [*signal.prompt, {"role": "assistant", "content": answer}],
        "kto_tag": desirable,
        "metadata": {"source": signal.source, "source_id": signal.id, "kind": signal.kind, "user": signal.user,
                     "model": model, "created_at": datetime.fromtimestamp(signal.created_at, UTC).isoformat()},
    }


def _left_out(signal: Signal) -> str:
    """Why a whole signal gives no example ('' when it may give some)."""
    if not signal.answers:
        return "ties"
    texts = [turn.get("content", "") for turn in signal.prompt] + [answer for answer, _, _ in signal.answers]
    if not signal.prompt or not all(isinstance(t, str) and t.strip() for t in texts):
        return "empty"
    if len(signal.answers) == 2 and signal.answers[0][0].strip() == signal.answers[1][0].strip():
        return "identical"
    if any(record_problems(_example(signal, answer, tag, ""), "kto") for answer, tag, _ in signal.answers):
        return "malformed"
    return ""


def kto_examples(signals: Iterable[Signal], daily_cap: int) -> tuple[KTOStats, list[dict[str, Any]]]:
    """The KTO examples of `signals` and the counts (at most `daily_cap` signals a user a day; 0: no cap)."""
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    per_user_day: Counter[tuple[str, str]] = Counter()
    examples: list[dict[str, Any]] = []
    for signal in signals:
        counts[f"{signal.source}s"] += 1
        reason = _left_out(signal)
        if reason:
            counts[reason] += 1
            continue
        new = [_example(signal, answer, tag, model) for answer, tag, model in signal.answers]
        keys = [json.dumps([e["messages"], e["kto_tag"]], ensure_ascii=False) for e in new]
        fresh = [(key, e) for key, e in zip(keys, new, strict=True) if key not in seen]
        counts["duplicates"] += len(new) - len(fresh)
        day = (signal.user, datetime.fromtimestamp(signal.created_at, UTC).strftime("%Y-%m-%d"))
        if not fresh:
            continue
        if daily_cap and per_user_day[day] >= daily_cap:
            counts["capped"] += 1
            continue
        per_user_day[day] += 1
        counts["used_signals"] += 1
        for key, example in fresh:
            seen.add(key)
            counts["desirable" if example["kto_tag"] else "undesirable"] += 1
            examples.append(example)
    return KTOStats(**counts), examples


def _collect(workspace: Workspace, since: float | None) -> tuple[KTOStats, list[dict[str, Any]]]:
    stats, examples = kto_examples(signals_since(workspace, since), workspace.settings.data.max_votes_per_user_per_day)
    kept = without_held_out(workspace, examples, "messages")
    if len(kept) == len(examples):
        return stats, kept
    desirable = sum(1 for e in kept if e["kto_tag"])
    return replace(stats, desirable=desirable, undesirable=len(kept) - desirable,
                   held_out=len(examples) - len(kept)), kept


def kto_stats(workspace: Workspace, since: float | None = None) -> KTOStats:
    """Counts of the votes and thumbs created after `since` (all when None): examples and each reason to drop."""
    return _collect(workspace, since)[0]


def export_kto(workspace: Workspace, since: float | None = None) -> KTOExportReport:
    """Write the KTO examples since `since` as `kto/kto_<ts>.jsonl` + `kto/kto.jsonl` and register them
    (`kto_<ts>`, `kto`) beside the preference pairs."""
    stats, examples = _collect(workspace, since)
    if not examples:
        raise LLMOpsError(f"no KTO examples to export from {stats.votes} votes and {stats.thumbs} thumbs; "
                          f"{stats.left_out()}")
    snapshot = timestamped_path(workspace, "kto", "kto", ".jsonl")
    latest = workspace.stage_data_dir("kto") / "kto.jsonl"
    datasets = [publish_dataset(workspace, snapshot.stem, snapshot, examples, "kto", "kto"),
                publish_dataset(workspace, "kto", latest, examples, "kto", "kto")]
    return KTOExportReport(stats, snapshot, latest, datasets)


def tag_counts(path: Path, max_bytes: int) -> tuple[int, int]:
    """(desirable, undesirable) examples of a KTO dataset file."""
    tags = [record.get("kto_tag") for _, record in read_records(path, max_bytes) if isinstance(record, dict)]
    return sum(1 for tag in tags if tag is True), sum(1 for tag in tags if tag is False)
