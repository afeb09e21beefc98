"""Fast ROUGE-L: identical to the `rouge-score` package on the same token lists."""

import random

import pytest
from rouge_score import rouge_scorer

from llmops.data.rouge import RougePool, RougeTokenizer, rouge_l_f, tokenize


def _sentence(rng: random.Random, words: list[str], longest: int) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(0, longest)))


def test_tokenize_keeps_cjk_characters_and_lowercases_words() -> None:
    assert tokenize("Nimbus H2 的保修期是 12 个月!") == ["nimbus", "h2", "的", "保", "修", "期", "是", "12", "个", "月"]


@pytest.mark.parametrize("longest", [10, 64, 90])
def test_pool_scores_equal_rouge_score(longest: int) -> None:
    """Short (numpy bit-parallel) and long (> 64 tokens, Python integers) candidates alike."""
    rng = random.Random(longest)
    words = [f"w{i}" for i in range(40)] + list("价格保修退货")
    texts = [_sentence(rng, words, longest) for _ in range(300)]
    pool = RougePool(texts)
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=RougeTokenizer())
    for candidate in [*texts[:5], *(_sentence(rng, words, longest) for _ in range(15))]:
        expected = [scorer.score(target, candidate)["rougeL"].fmeasure for target in texts]
        assert pool.scores(candidate).tolist() == expected
        assert pool.max_score(candidate) == max(expected)


def test_rouge_l_f_matches_known_values() -> None:
    assert rouge_l_f(["a", "b", "c", "d"], ["a", "c", "d", "e"]) == pytest.approx(0.75)
    assert rouge_l_f([], ["a"]) == 0.0
    assert rouge_l_f(["a"], ["b"]) == 0.0


def test_pool_grows_and_reports_max() -> None:
    pool = RougePool()
    assert pool.max_score("anything") == 0.0
    pool.add("how much does the nimbus h2 cost")
    pool.add("x " * 100)  # longer than any earlier entry: the token matrix grows
    assert len(pool) == 2
    assert pool.max_score("how much does the aurora s5 cost") == pytest.approx(2 * 5 / 14)
    assert pool.max_score("how much does the nimbus h2 cost") == 1.0
