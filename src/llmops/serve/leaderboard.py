"""Arena leaderboard: Bradley–Terry ratings from votes, with bootstrap 95% intervals.

P(i beats j) = p_i / (p_i + p_j). Strengths are fitted by Hunter's (2004) minorization–maximization
updates, p_i ← W_i / Σ_j n_ij / (p_i + p_j), where W_i counts wins plus half of the ties ("both bad"
counts as a tie) and n_ij the games of i and j. Ratings are on the Elo scale, 1000 + 400·log10(p_i),
with the strengths' geometric mean fixed at 1. The interval resamples battles with replacement.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from llmops import db
from llmops.serve.metrics import VOTE_SCORES
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
    """Bradley–Terry strengths (geometric mean 1) from W (wins + half ties, per model) and n (games per pair)."""
    strength = np.ones(len(wins))
    for _ in range(iterations):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated = np.where(denominator > 0, wins / np.where(denominator > 0, denominator, 1.0), 1.0)
        updated = np.maximum(updated, MIN_STRENGTH)
        updated /= np.exp(np.log(updated).mean())
        if np.max(np.abs(np.log(updated) - np.log(strength))) < tol:
            return updated
        strength = updated
    return strength


def _tally(outcomes: Sequence[Outcome], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    wins = np.zeros(len(index))
    games = np.zeros((len(index), len(index)))
    for outcome in outcomes:
        a, b = index[outcome.model_a], index[outcome.model_b]
        wins[a] += outcome.score_a
        wins[b] += 1 - outcome.score_a
        games[a, b] += 1
        games[b, a] += 1
    return wins, games


def bradley_terry(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Elo-scale Bradley–Terry rating of each model in `outcomes` (self-battles are ignored)."""
    outcomes = [o for o in outcomes if o.model_a != o.model_b]
    models = sorted({o.model_a for o in outcomes} | {o.model_b for o in outcomes})
    index = {model: i for i, model in enumerate(models)}
    strength = fit_strengths(*_tally(outcomes, index))
    return {model: BASE_RATING + SCALE * float(np.log10(strength[i])) for model, i in index.items()}


def rate(outcomes: Sequence[Outcome], rounds: int = 200, seed: int = 0) -> list[Rating]:
    """Ratings with bootstrap 95% intervals (`rounds` resamples of the battles), best first."""
    outcomes = [o for o in outcomes if o.model_a != o.model_b]
    if not outcomes:
        return []
    point = bradley_terry(outcomes)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {model: [] for model in point}
    for _ in range(rounds):
        picks = rng.integers(0, len(outcomes), size=len(outcomes))
        for model, value in bradley_terry([outcomes[i] for i in picks]).items():
            samples[model].append(value)
    ratings = []
    for model, value in point.items():
        low, high = np.quantile(samples[model], [0.025, 0.975]) if samples[model] else (value, value)
        mine = [o.score_a if o.model_a == model else 1 - o.score_a for o in outcomes if model in (o.model_a, o.model_b)]
        ratings.append(Rating(model, value, float(low), float(high), len(mine), mine.count(1.0), mine.count(0.0),
                              mine.count(0.5)))
    return sorted(ratings, key=lambda r: r.rating, reverse=True)


def arena_outcomes(workspace: Workspace) -> list[Outcome]:
    """Every voted battle between two different versions."""
    table = db.battles
    query = select(table.c.model_a, table.c.model_b, table.c.vote).where(table.c.vote.is_not(None))
    with workspace.engine.connect() as conn:
        return [Outcome(a, b, VOTE_SCORES[vote]) for a, b, vote in conn.execute(query) if a != b]


def leaderboard(workspace: Workspace, rounds: int = 200, seed: int = 0) -> list[Rating]:
    """The arena leaderboard of the workspace's votes."""
    return rate(arena_outcomes(workspace), rounds, seed)
