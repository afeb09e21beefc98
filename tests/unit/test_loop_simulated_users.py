from collections.abc import Sequence

import pytest

from llmops.demo.simulated_users import Rubric, RubricJudge, SimulatedUsers
from llmops.loop.evaluate import EvalItem, evaluate_model_improvement
from llmops.votes import Vote


def test_rubric_looks_at_the_last_sentence() -> None:
    r = Rubric()
    assert r.met("The kettle holds 1.7 liters. Hope this helps!")
    assert r.met("Returns take 7 days.  Thank you for shopping with us.")
    assert r.met("Yes.\nLet me know if you have any other questions")
    assert not r.met("Hope this helps. The kettle holds 1.7 liters.")
    assert not r.met("The kettle holds 1.7 liters.")
    assert not r.met("")
    assert r.met("保修 12 个月。希望对您有帮助！")
    assert r.met("可以退货，祝您购物愉快！")
    assert not r.met("希望对您有帮助！保修 12 个月。")
    assert r.rate(["Hope this helps.", "No.", "No.", "No."]) == 0.25


def test_users_vote_by_the_rubric_without_noise() -> None:
    users = SimulatedUsers(noise=0.0)
    good, bad = "Sure. Happy to help!", "Sure."
    assert users.vote(good, bad) is Vote.A
    assert users.vote(bad, good) is Vote.B
    assert users.vote(good, good) is Vote.TIE
    assert users.vote(bad, bad) is Vote.BOTH_BAD
    assert (users.thumbs(good), users.thumbs(bad)) == (1, -1)


def test_noise_votes_at_random() -> None:
    users = SimulatedUsers(noise=1.0, seed=3)
    votes = [users.vote("Sure. Happy to help!", "Sure.") for _ in range(400)]
    assert set(votes) == {Vote.A, Vote.B}
    assert votes.count(Vote.A) / 400 == pytest.approx(0.5, abs=0.08)
    users = SimulatedUsers(noise=0.2, seed=3)
    votes = [users.vote("Sure. Happy to help!", "Sure.") for _ in range(1000)]
    assert votes.count(Vote.B) / 1000 == pytest.approx(0.1, abs=0.03)


def test_rubric_judge_compares_samples_of_both_models() -> None:
    def answers(model: str, prompts: Sequence[str]) -> list[str]:
        return [f"About {p}." + (" Have a nice day." if model == "polite" else "") for p in prompts]

    items = [EvalItem(f"item {i}") for i in range(10)]
    ev = evaluate_model_improvement("plain", "polite", items, RubricJudge(answers, samples_per_prompt=4))
    assert (ev.comparisons, ev.prompts, ev.win_rate, ev.avg_score, ev.avg_score_old) == (40, 10, 1.0, 1.0, 0.0)
