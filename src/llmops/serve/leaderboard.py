"""Arena leaderboard: Bradley–Terry ratings from votes, with bootstrap 95% intervals.

P(i beats j) = p_i / (p_i + p_j). Strengths are fitted by Hunter's (2004) minorization–maximization
updates, p_i ← W_i / Σ_j n_ij / (p_i + p_j), where W_i counts wins plus half of the ties ("both bad"
counts as a tie) and n_ij the games of i and j. Ratings are on the Elo scale, 1000 + 400·log10(p_i),
with the strengths' geometric mean fixed at 1. The interval resamples battles with replacement; resamples are
drawn as counts of each distinct battle (a multinomial) and fitted together, so their cost does not grow with the
number of votes. `LeaderboardCache` keeps the result per (votes so far, rounds).
"""

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select

from llmops import db
from llmops.errors import LLMOpsError
from llmops.votes import parse_vote
from llmops.workspace import Workspace

SCALE, BASE_RATING = 400.0, 1000.0
MIN_STRENGTH = 1e-6


@dataclass(frozen=True)
class Outcome:
    model_a: str
    model_b: str
    score_a: float  # 1 a won, 0 b won, 0.5 tie


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float
    ci_low: float
    ci_high: float
    battles: int
    wins: int
    losses: int
    ties: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_strengths(wins: np.ndarray, games: np.ndarray, iterations: int = 10_000, tol: float = 1e-10) -> np.ndarray:
    """Bradley–Terry strengths from W (wins + half ties, per model) and n (games per pair): geometric mean 1 over
    the models that played; one who did not keeps 1. Leading axes are independent fits (bootstrap resamples),
    updated together so that a thousand fits cost about as many numpy calls as one."""
    played = games.sum(axis=-1) > 0
    count = np.maximum(played.sum(axis=-1, keepdims=True), 1)
    strength = np.ones(wins.shape)
    for _ in range(iterations):
        denominator = (games / (strength[..., :, None] + strength[..., None, :])).sum(axis=-1)
        updated = np.maximum(wins / np.where(played, denominator, 1.0), MIN_STRENGTH)
        log = np.where(played, np.log(updated), 0.0)
        updated = np.where(played, np.exp(log - log.sum(axis=-1, keepdims=True) / count), 1.0)
        if np.max(np.abs(np.log(updated) - np.log(strength))) < tol:
            return updated
        strength = updated
    return strength


@dataclass(frozen=True)
class _Kinds:
    """The distinct battles (a, b, a's score) of a list of outcomes: each one's tallies and how often it occurs."""

    wins: np.ndarray  # (kinds, models)
    games: np.ndarray  # (kinds, models, models)
    counts: np.ndarray  # (kinds,)

    def tally(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """W and n for `counts` battles of each kind (leading axes kept)."""
        return counts @ self.wins, np.tensordot(counts, self.games, axes=(-1, 0))


def _kinds(outcomes: Sequence[Outcome], index: dict[str, int]) -> _Kinds:
    distinct = Counter((index[o.model_a], index[o.model_b], o.score_a) for o in outcomes)
    wins, games = np.zeros((len(distinct), len(index))), np.zeros((len(distinct), len(index), len(index)))
    for row, (a, b, score) in enumerate(distinct):
        wins[row, a], wins[row, b] = score, 1 - score
        games[row, a, b] = games[row, b, a] = 1
    return _Kinds(wins, games, np.array(list(distinct.values()), dtype=float))


def _index(outcomes: Sequence[Outcome]) -> dict[str, int]:
    models = sorted({o.model_a for o in outcomes} | {o.model_b for o in outcomes})
    return {model: i for i, model in enumerate(models)}


def _elo(strength: np.ndarray) -> np.ndarray:
    ratings: np.ndarray = BASE_RATING + SCALE * np.log10(strength)
    return ratings


def bradley_terry(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Elo-scale Bradley–Terry rating of each model in `outcomes` (self-battles are ignored)."""
    outcomes = [o for o in outcomes if o.model_a != o.model_b]
    index = _index(outcomes)
    kinds = _kinds(outcomes, index)
    ratings = _elo(fit_strengths(*kinds.tally(kinds.counts)))
    return {model: float(ratings[i]) for model, i in index.items()}


def _bootstrap(kinds: _Kinds, rounds: int, seed: int) -> list[np.ndarray]:
    """Per model, its rating in each of `rounds` resamples (with replacement) of the battles it played in."""
    total = int(kinds.counts.sum())
    resampled = np.random.default_rng(seed).multinomial(total, kinds.counts / total, size=rounds).astype(float)
    wins, games = kinds.tally(resampled)
    ratings = _elo(fit_strengths(wins, games))
    played = games.sum(axis=-1) > 0
    return [ratings[played[:, i], i] for i in range(ratings.shape[1])]


def rate(outcomes: Sequence[Outcome], rounds: int = 200, seed: int = 0) -> list[Rating]:
    """Ratings with bootstrap 95% intervals (`rounds` resamples of the battles), best first."""
    if rounds < 1:
        raise LLMOpsError(f"rounds: {rounds}; expected at least 1")
    outcomes = [o for o in outcomes if o.model_a != o.model_b]
    if not outcomes:
        return []
    point = bradley_terry(outcomes)
    index = _index(outcomes)
    samples = _bootstrap(_kinds(outcomes, index), rounds, seed)
    ratings = []
    for model, value in point.items():
        mine_samples = samples[index[model]]
        low, high = np.quantile(mine_samples, [0.025, 0.975]) if len(mine_samples) else (value, value)
        mine = [o.score_a if o.model_a == model else 1 - o.score_a for o in outcomes if model in (o.model_a, o.model_b)]
        ratings.append(Rating(model, value, float(low), float(high), len(mine), mine.count(1.0), mine.count(0.0),
                              mine.count(0.5)))
    return sorted(ratings, key=lambda r: r.rating, reverse=True)


def arena_outcomes(workspace: Workspace) -> list[Outcome]:
    """Every voted battle between two different versions."""
    table = db.battles
    query = select(table.c.model_a, table.c.model_b, table.c.vote).where(table.c.vote.is_not(None))
    with workspace.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Outcome(a, b, parse_vote(vote, "battles.vote").score_a) for a, b, vote in rows if a != b]


def leaderboard(workspace: Workspace, rounds: int = 200, seed: int = 0) -> list[Rating]:
    """The arena leaderboard of the workspace's votes."""
    return rate(arena_outcomes(workspace), rounds, seed)


def voted_battles(workspace: Workspace) -> int:
    with workspace.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(db.battles.c.vote.is_not(None))).scalar_one())


class LeaderboardCache:
    """The leaderboard per (votes so far, rounds): asked again before a new vote, it is not refitted. One fit runs
    at a time (a caller waits for the one in progress, then usually finds its answer cached)."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace
        self._lock = threading.Lock()
        self._votes = -1
        self._boards: dict[int, list[Rating]] = {}

    def get(self, rounds: int) -> list[Rating]:
        votes = voted_battles(self._workspace)
        with self._lock:
            if votes != self._votes:
                self._votes, self._boards = votes, {}
            if rounds not in self._boards:
                self._boards[rounds] = leaderboard(self._workspace, rounds)
            return self._boards[rounds]
