import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from llmops.errors import LLMOpsError
from llmops.loop.evaluate import (
    Comparison,
    EvalItem,
    ReferenceJudge,
    bootstrap_interval,
    evaluate_model_improvement,
    load_test_set,
    summarize,
)


def test_bootstrap_matches_the_normal_interval_of_a_proportion() -> None:
    rng = random.Random(1)
    outcomes = [1.0 if rng.random() < 0.6 else 0.0 for _ in range(2000)]
    p = sum(outcomes) / len(outcomes)
    half = 1.96 * math.sqrt(p * (1 - p) / len(outcomes))
    low, high = bootstrap_interval(outcomes, [str(i) for i in range(len(outcomes))], samples=4000)
    assert low == pytest.approx(p - half, abs=0.004)
    assert high == pytest.approx(p + half, abs=0.004)


def test_bootstrap_resamples_prompts_not_samples() -> None:
    rng = random.Random(2)
    per_prompt = [1.0 if rng.random() < 0.6 else 0.0 for _ in range(300)]
    independent = bootstrap_interval(per_prompt, [str(i) for i in range(300)])
    four_each = [o for o in per_prompt for _ in range(4)]
    repeated = bootstrap_interval(four_each, [str(i) for i in range(300) for _ in range(4)])
    assert repeated[0] == pytest.approx(independent[0], abs=0.01)
    naive = bootstrap_interval(four_each, [str(i) for i in range(1200)])
    assert naive[1] - naive[0] < 0.6 * (repeated[1] - repeated[0])


def test_bootstrap_degenerate_cases() -> None:
    assert bootstrap_interval([1.0] * 10, list("abcdefghij")) == (1.0, 1.0)
    assert bootstrap_interval([], []) == (0.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_interval([1.0], [])


def test_summarize_counts_ties_half_and_gates_on_the_lower_bound() -> None:
    comparisons = [Comparison(f"p{i}", 1.0, 0.0) for i in range(60)]
    comparisons += [Comparison(f"q{i}", 0.0, 1.0) for i in range(20)]
    comparisons += [Comparison(f"r{i}", 0.5, 0.5, consistent=False) for i in range(20)]
    ev = summarize("old", "new", "test", comparisons)
    assert (ev.wins, ev.losses, ev.ties, ev.comparisons, ev.prompts) == (60, 20, 20, 100, 100)
    assert ev.win_rate == pytest.approx(0.7)
    assert ev.avg_score == pytest.approx(0.7) and ev.avg_score_old == pytest.approx(0.3)
    assert ev.consistency == pytest.approx(0.8)
    assert ev.ci_low < 0.7 < ev.ci_high
    assert ev.passes(0.5) and not ev.passes(0.7)
    assert not summarize("old", "new", "test", []).passes(0.0)


class EchoModels:
    """Answers per model: `good` repeats the prompt's reference, `bad` says something else."""

    def __init__(self, references: dict[str, str]) -> None:
        self.references = references
        self.calls: list[tuple[str, int]] = []

    def __call__(self, model: str, prompts: Sequence[str]) -> list[str]:
        self.calls.append((model, len(prompts)))
        return [self.references[p] if model == "good" else "no idea at all" for p in prompts]


def test_reference_judge_rouge_and_exact() -> None:
    items = [EvalItem(f"question {i}", f"the answer number {i} is here") for i in range(10)]
    models = EchoModels({item.prompt: item.reference for item in items})
    ev = evaluate_model_improvement("bad", "good", items, ReferenceJudge(models, samples_per_prompt=2))
    assert (ev.win_rate, ev.comparisons, ev.prompts, ev.judge) == (1.0, 20, 10, "rouge_l")
    assert models.calls == [("good", 20), ("bad", 20)]
    exact = evaluate_model_improvement("good", "bad", items, ReferenceJudge(models, exact=True))
    assert (exact.win_rate, exact.avg_score, exact.avg_score_old, exact.judge) == (0.0, 0.0, 1.0, "exact_match")
    judge = ReferenceJudge(models)
    assert judge.score("退货 需要 七天", "退货需要七天") == pytest.approx(1.0)
    with pytest.raises(LLMOpsError, match="needs a reference"):
        judge.compare("a", "b", [EvalItem("q")])


def test_load_test_set_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "heldout.jsonl"
    path.write_text(json.dumps({"prompt": "hi", "reference": "hello"}) + "\n\n" + json.dumps({"prompt": ""}) + "\n")
    with pytest.raises(LLMOpsError, match=r"heldout.jsonl:3: prompt:"):
        load_test_set(path)
    path.write_text(json.dumps({"prompt": "hi", "reference": 3}) + "\n")
    with pytest.raises(LLMOpsError, match=r"heldout.jsonl:1: reference:"):
        load_test_set(path)
    path.write_text("{not json\n")
    with pytest.raises(LLMOpsError, match=r"heldout.jsonl:1: not valid JSON"):
        load_test_set(path)
    path.write_text(json.dumps({"prompt": "hi"}) + "\n")
    assert load_test_set(path) == [EvalItem("hi", "")]
    with pytest.raises(LLMOpsError, match="not found"):
        load_test_set(tmp_path / "missing.jsonl")
