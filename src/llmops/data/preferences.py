"""The preference store: arena votes in the `votes` table → DPO pairs (spec 4.3).

Every vote (a, b, tie or both_bad: `llmops.votes.Vote`; the spec's "A"/"B" are read as a/b) is kept. An export
turns the decisive ones into pairs in the spec's format (`data/llmops/dpo/prefs_<ts>.jsonl` and `prefs.jsonl`,
registered with `ranking: true`) and in TRL's conversational format; identical answers, empty texts, duplicate
pairs and votes over a user's daily cap are left out and counted.
"""

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from llmops import db
from llmops.data.eval_sets import without_held_out
from llmops.data.formats import ranking_to_trl
from llmops.data.registry import DatasetRecord, publish_dataset, timestamped_path
from llmops.errors import LLMOpsError
from llmops.votes import Vote, parse_vote
from llmops.workspace import Workspace, current_workspace


@dataclass(frozen=True)
class PairStats:
    """What the votes since a time give: valid pairs and why the others are not pairs."""

    votes: int = 0
    valid_pairs: int = 0
    ties: int = 0
    both_bad: int = 0
    identical: int = 0
    empty: int = 0
    duplicates: int = 0
    capped: int = 0

    def left_out(self) -> str:
        """What was left out and why, for people."""
        return (f"left out: {self.ties} ties, {self.both_bad} both_bad, {self.identical} identical, {self.empty} "
                f"empty, {self.duplicates} duplicates, {self.capped} over the daily cap")


@dataclass(frozen=True)
class ExportReport:
    stats: PairStats
    path: Path  # the snapshot prefs_<ts>.jsonl
    latest_path: Path  # prefs.jsonl
    trl_path: Path
    datasets: list[DatasetRecord] = field(default_factory=list)


def vote_key(user: str, question: str, response_a: str, response_b: str, choice: str) -> str:
    """The derived id of a vote: the same vote sent twice is stored once."""
    text = json.dumps([user, question, response_a, response_b, choice], ensure_ascii=False)
    return "v-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _vote_row(question: Any, response_a: Any, response_b: Any, choice: Any, metadata: Any, vote_id: str | None,
              user: Any) -> dict[str, Any]:
    for name, value in (("question", question), ("response_a", response_a), ("response_b", response_b),
                        ("user", user)):
        if not isinstance(value, str):
            raise LLMOpsError(f"vote: {name}: expected a string, got {type(value).__name__}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise LLMOpsError(f"vote: metadata: expected an object, got {type(metadata).__name__}")
    meta = dict(metadata or {})
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise LLMOpsError(f"vote: metadata: not JSON-serialisable: {exc}") from exc
    vote = parse_vote(choice, "vote: choice")
    key = vote_id or vote_key(user, question, response_a, response_b, vote.value)
    if not isinstance(key, str) or not 0 < len(key) <= 100:
        raise LLMOpsError("vote: vote_id: expected a string of 1–100 characters")
    return {"id": key, "created_at": time.time(), "user": user, "question": question, "response_a": response_a,
            "response_b": response_b, "choice": vote.value, "meta": meta}


def _store(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows whose id is not stored yet (one query for the ids, one executemany)."""
    ids = [row["id"] for row in rows]
    seen = set(conn.execute(select(db.votes.c.id).where(db.votes.c.id.in_(ids))).scalars())
    new = []
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            new.append(row)
    if new:
        conn.execute(db.votes.insert(), new)


class PreferenceCollector:
    """Records arena votes (spec 4.3.1) in `workspace` (default: the current folder's). An acknowledged vote is
    committed (SQLite WAL, synchronous=FULL)."""

    def __init__(self, workspace: Workspace | None = None) -> None:
        self.workspace = workspace or current_workspace()

    def collect_preference(self, question: str, response_a: str, response_b: str, choice: str,
                           metadata: Mapping[str, Any] | None = None, *, vote_id: str | None = None,
                           user: str = "") -> str:
        """Store one vote in one transaction; returns its id. Sending the same id (or vote) again is a no-op."""
        row = _vote_row(question, response_a, response_b, choice, metadata, vote_id, user)
        self._commit([row])
        return str(row["id"])

    def collect_many(self, votes: Sequence[Mapping[str, Any]], conn: Connection | None = None) -> list[str]:
        """Store several votes (each a mapping of collect_preference's arguments) in one transaction: their own,
        or the caller's `conn` (then the caller commits)."""
        rows = [_vote_row(v.get("question"), v.get("response_a"), v.get("response_b"), v.get("choice", ""),
                          v.get("metadata"), v.get("vote_id"), v.get("user", "")) for v in votes]
        if conn is not None:
            _store(conn, rows)
        else:
            self._commit(rows)
        return [str(row["id"]) for row in rows]

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self.workspace.engine.begin() as conn:
                _store(conn, rows)
        except IntegrityError:  # a concurrent writer stored one of these ids first: store the others
            with self.workspace.engine.begin() as conn:
                _store(conn, rows)


def votes_since(workspace: Workspace, since: float | None) -> list[Any]:
    """The stored votes newer than `since` (all when None), oldest first: what the DPO and KTO exports read."""
    query = select(db.votes).order_by(db.votes.c.created_at, db.votes.c.id)
    if since is not None:
        query = query.where(db.votes.c.created_at > since)
    with workspace.engine.connect() as conn:
        return list(conn.execute(query).all())


def _pairs(votes: Iterable[Any], daily_cap: int) -> tuple[PairStats, list[dict[str, Any]]]:
    counts: Counter[str] = Counter()
    seen: set[tuple[str, str, str]] = set()
    per_user_day: Counter[tuple[str, str]] = Counter()
    pairs = []
    for vote in votes:
        counts["votes"] += 1
        choice = parse_vote(vote.choice, f"votes.choice of {vote.id!r}")
        answers = choice.chosen_rejected(vote.response_a, vote.response_b)
        if answers is None:
            counts["ties" if choice is Vote.TIE else "both_bad"] += 1
            continue
        chosen, rejected = answers
        key = (vote.question.strip(), chosen.strip(), rejected.strip())
        day = datetime.fromtimestamp(vote.created_at, UTC).strftime("%Y-%m-%d")
        reason = ("empty" if not all(key) else "identical" if key[1] == key[2]
                  else "duplicates" if key in seen
                  else "capped" if daily_cap and per_user_day[(vote.user, day)] >= daily_cap else "")
        if reason:
            counts[reason] += 1
            continue
        seen.add(key)
        per_user_day[(vote.user, day)] += 1
        counts["valid_pairs"] += 1
        pairs.append(_pair(vote, chosen, rejected))
    return PairStats(**counts), pairs


def _pair(vote: Any, chosen: str, rejected: str) -> dict[str, Any]:
    meta = vote.meta or {}
    return {
        "conversations": [{"role": "user", "content": vote.question}],
        "chosen": {"role": "assistant", "content": chosen},
        "rejected": {"role": "assistant", "content": rejected},
        "metadata": {
            "vote_id": vote.id,
            "user": vote.user,
            "choice": vote.choice,
            "created_at": datetime.fromtimestamp(vote.created_at, UTC).isoformat(),
            "model_a": str(meta.get("model_a", "")),
            "model_b": str(meta.get("model_b", "")),
            "extra": json.dumps(meta, ensure_ascii=False, sort_keys=True),
        },
    }


def pair_stats(workspace: Workspace, since: float | None = None) -> PairStats:
    """Counts of the votes created after `since` (all when None): valid pairs and each reason to drop one."""
    stats, _ = _pairs(votes_since(workspace, since), workspace.settings.data.max_votes_per_user_per_day)
    return stats


def export_preferences(workspace: Workspace, since: float | None = None) -> ExportReport:
    """Write the valid pairs since `since` as `dpo/prefs_<ts>.jsonl` + `dpo/prefs.jsonl` (spec 4.3.2) and a
    TRL file, and register them (`prefs_<ts>`, `prefs`, `prefs_<ts>_trl`)."""
    stats, pairs = _pairs(votes_since(workspace, since), workspace.settings.data.max_votes_per_user_per_day)
    pairs = without_held_out(workspace, pairs, "ranking")
    if not pairs:
        raise LLMOpsError(f"no valid preference pairs to export: {stats.votes} votes, {stats.left_out()} (and pairs "
                          "on held-out prompts)")
    snapshot = timestamped_path(workspace, "dpo", "prefs", ".jsonl")
    latest = workspace.stage_data_dir("dpo") / "prefs.jsonl"
    trl = snapshot.with_name(snapshot.stem + "_trl.jsonl")
    datasets = [
        publish_dataset(workspace, snapshot.stem, snapshot, pairs, "dpo", "ranking"),
        publish_dataset(workspace, trl.stem, trl, [ranking_to_trl(p) for p in pairs], "dpo", "trl",
                        llamafactory=False),
        publish_dataset(workspace, "prefs", latest, pairs, "dpo", "ranking"),
    ]
    return ExportReport(stats, snapshot, latest, trl, datasets)
