"""Bradley–Terry leaderboard: checked against an independent fit (gradient ascent on the log-likelihood)."""

import random

import numpy as np
import pytest

from llmops.serve.arena import insert_battle, new_battle
from llmops.serve.leaderboard import Outcome, bradley_terry, leaderboard, rate
from llmops.workspace import Workspace

pytestmark = pytest.mark.store

TRUE = {"chat-v1.0": 0.0, "chat-v1.1": 0.8, "chat-v1.2": -0.5, "chat-v2.0": 1.5}


def simulated(n: int, seed: int = 0, tie_rate: float = 0.15) -> list[Outcome]:
    rng = random.Random(seed)
    models = list(TRUE)
    outcomes = []
    for _ in range(n):
        a, b = rng.sample(models, 2)
        if rng.random() < tie_rate:
            outcomes.append(Outcome(a, b, 0.5))
            continue
        p_a = 1 / (1 + np.exp(TRUE[b] - TRUE[a]))
        outcomes.append(Outcome(a, b, 1.0 if rng.random() < p_a else 0.0))
    return outcomes


def logistic_fit(outcomes: list[Outcome]) -> dict[str, float]:
    """Independent reference: maximise Σ s·log σ(θa−θb) + (1−s)·log σ(θb−θa) by full-batch gradient ascent."""
    models = sorted({o.model_a for o in outcomes} | {o.model_b for o in outcomes})
    col = {m: i for i, m in enumerate(models)}
    design = np.zeros((len(outcomes), len(models)))
    for row, o in enumerate(outcomes):
        design[row, col[o.model_a]] = 1.0
        design[row, col[o.model_b]] = -1.0
    target = np.array([o.score_a for o in outcomes])
    theta = np.zeros(len(models))
    for _ in range(20_000):
        predicted = 1 / (1 + np.exp(-design @ theta))
        theta += 2.0 * design.T @ (target - predicted) / len(outcomes)
        theta -= theta.mean()
    return {m: float(theta[col[m]]) for m in models}


def test_bradley_terry_matches_independent_logistic_fit() -> None:
    outcomes = simulated(3000)
    ours = bradley_terry(outcomes)
    reference = logistic_fit(outcomes)
    for model in TRUE:
        natural = (ours[model] - 1000) / 400 * np.log(10)  # Elo scale → natural log-strength, mean 0
        assert natural == pytest.approx(reference[model], abs=1e-4)
    assert sorted(ours, key=ours.__getitem__) == sorted(TRUE, key=TRUE.__getitem__)


def test_ties_count_half() -> None:
    only_ties = [Outcome("chat-v1.0", "chat-v1.1", 0.5)] * 10
    ratings = bradley_terry(only_ties)
    assert ratings["chat-v1.0"] == pytest.approx(ratings["chat-v1.1"])
    # one win + two ties for a = 2 of 3 points: p_a / (p_a + p_b) = 2/3 → 400·log10(2) apart
    mixed = [Outcome("chat-v1.0", "chat-v1.1", 1.0), Outcome("chat-v1.0", "chat-v1.1", 0.5),
             Outcome("chat-v1.1", "chat-v1.0", 0.5)]
    ratings = bradley_terry(mixed)
    assert ratings["chat-v1.0"] - ratings["chat-v1.1"] == pytest.approx(400 * np.log10(2.0), abs=1e-6)


def test_bootstrap_intervals_bracket_the_estimate_and_shrink_with_data() -> None:
    small = {r.model: r for r in rate(simulated(200, seed=1), rounds=200)}
    large = {r.model: r for r in rate(simulated(4000, seed=1), rounds=200)}
    for model in TRUE:
        assert small[model].ci_low <= small[model].rating <= small[model].ci_high
        assert large[model].ci_low <= large[model].rating <= large[model].ci_high
        assert large[model].ci_high - large[model].ci_low < small[model].ci_high - small[model].ci_low
    assert next(iter(large)) == "chat-v2.0"


def test_leaderboard_reads_voted_battles_and_skips_self_battles(workspace: Workspace) -> None:
    votes = [("chat-v1.0", "chat-v1.1", "b"), ("chat-v1.1", "chat-v1.0", "a"), ("chat-v1.0", "chat-v1.1", "tie"),
             ("chat-v1.0", "chat-v1.1", "both_bad"), ("chat-v1.0", "chat-v1.1", "a"), ("chat-v1.0", "chat-v1.0", "a"),
             ("chat-v1.0", "chat-v1.1", None)]
    with workspace.engine.begin() as conn:
        for a, b, vote in votes:
            battle = new_battle("q", "u", (a, b), ("x", "y"), {})
            insert_battle(conn, battle.__class__(**{**battle.to_dict(), "vote": vote}))
    board = leaderboard(workspace, rounds=50)
    assert [r.model for r in board] == ["chat-v1.1", "chat-v1.0"]
    top = board[0]
    assert (top.battles, top.wins, top.losses, top.ties) == (5, 2, 1, 2)
