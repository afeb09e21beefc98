"""Did the candidate get better? Spec 6.3.3 `evaluate_model_improvement` with a bootstrap interval.

A judge compares the candidate ("new") with production ("old") on held-out prompts and gives each answer a
score in [0, 1]; the new model wins a comparison when its score is higher, a draw counts half. All judges
share one Protocol: human arena votes, a reference judge (ROUGE-L or exact match against held-out
references), an LLM judge on any OpenAI-compatible endpoint (both orders; a disagreement is a tie), and the
demo's simulated-user rubric. The 95% interval is a percentile bootstrap that resamples whole prompts, so
several samples of one prompt are not counted as independent evidence.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rouge_score import rouge_scorer

from llmops.data.rouge import RougeTokenizer
from llmops.errors import LLMOpsError, located
from llmops.fileio import MAX_FILE_BYTES, read_text_file


@dataclass(frozen=True)
class EvalItem:
    """One held-out prompt and, for the reference judge, its reference answer."""

    prompt: str
    reference: str = ""


@dataclass(frozen=True)
class Comparison:
    """One judged pair of answers to `prompt`: scores in [0, 1]; `consistent` is False when the judge
    contradicted itself (an LLM judge disagreeing with itself across the two orders, a minority vote)."""

    prompt: str
    new_score: float
    old_score: float
    consistent: bool = True

    @property
    def outcome(self) -> float:
        if self.new_score > self.old_score:
            return 1.0
        return 0.0 if self.new_score < self.old_score else 0.5


class Judge(Protocol):
    """Compares answers of `new_model` and `old_model` to the items; one Comparison per judged answer pair."""

    name: str

    def compare(self, old_model: str, new_model: str, items: Sequence[EvalItem]) -> list[Comparison]: ...


Generate = Callable[[str, Sequence[str]], list[str]]
"""(model name, prompts) → one answer per prompt; sampled, so calling twice gives new samples."""


@dataclass(frozen=True)
class Evaluation:
    old_model: str
    new_model: str
    judge: str
    win_rate: float
    ci_low: float
    ci_high: float
    avg_score: float
    avg_score_old: float
    consistency: float
    comparisons: int
    prompts: int
    wins: int
    losses: int
    ties: int

    def passes(self, lower_bound: float) -> bool:
        """The promotion gate: the interval's lower bound must exceed `lower_bound`."""
        return self.comparisons > 0 and self.ci_low > lower_bound

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_interval(
    outcomes: Sequence[float], groups: Sequence[str], samples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean outcome, resampling whole groups (prompts) with replacement."""
    if len(outcomes) != len(groups):
        raise ValueError("outcomes and groups differ in length")
    if not outcomes:
        return 0.0, 1.0
    index = {name: i for i, name in enumerate(dict.fromkeys(groups))}
    group_of = np.array([index[g] for g in groups])
    sums = np.bincount(group_of, weights=np.asarray(outcomes, dtype=float), minlength=len(index))
    counts = np.bincount(group_of, minlength=len(index)).astype(float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(index), size=(samples, len(index)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def summarize(
    old_model: str, new_model: str, judge: str, comparisons: Sequence[Comparison], samples: int = 2000, seed: int = 0
) -> Evaluation:
    """Win rate (draws count half), its interval, average scores and consistency of judged comparisons."""
    outcomes = [c.outcome for c in comparisons]
    n = len(outcomes)
    low, high = bootstrap_interval(outcomes, [c.prompt for c in comparisons], samples, seed)
    return Evaluation(
        old_model=old_model,
        new_model=new_model,
        judge=judge,
        win_rate=sum(outcomes) / n if n else 0.0,
        ci_low=low,
        ci_high=high,
        avg_score=sum(c.new_score for c in comparisons) / n if n else 0.0,
        avg_score_old=sum(c.old_score for c in comparisons) / n if n else 0.0,
        consistency=sum(c.consistent for c in comparisons) / n if n else 0.0,
        comparisons=n,
        prompts=len({c.prompt for c in comparisons}),
        wins=outcomes.count(1.0),
        losses=outcomes.count(0.0),
        ties=outcomes.count(0.5),
    )


def evaluate_model_improvement(
    old_model: str, new_model: str, test_set: Sequence[EvalItem], judge: Judge, samples: int = 2000, seed: int = 0
) -> Evaluation:
    """Spec 6.3.3: judge `new_model` against `old_model` on `test_set`; win rate with a bootstrap 95% interval."""
    comparisons = judge.compare(old_model, new_model, test_set)
    return summarize(old_model, new_model, judge.name, comparisons, samples, seed)


def load_test_set(path: Path, max_bytes: int = MAX_FILE_BYTES) -> list[EvalItem]:
    """Held-out items from a jsonl file of {"prompt": ..., "reference": ...} (reference optional)."""
    if not path.exists():
        raise LLMOpsError(f"{path}: held-out evaluation set not found")
    items = []
    for number, line in enumerate(read_text_file(path, max_bytes, "held-out set").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise located(path, number, None, f"not valid JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise located(path, number, None, "not valid JSON: nested too deeply") from exc
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise located(path, number, "prompt", "missing or not a non-empty string")
        reference = row.get("reference", "")
        if not isinstance(reference, str):
            raise located(path, number, "reference", "not a string")
        items.append(EvalItem(row["prompt"], reference))
    if not items:
        raise LLMOpsError(f"{path}: held-out evaluation set is empty")
    return items


class ReferenceJudge:
    """Scores each answer against the item's reference: ROUGE-L F1, or 1/0 exact match (whitespace-trimmed)."""

    def __init__(self, generate: Generate, samples_per_prompt: int = 1, exact: bool = False) -> None:
        self.generate = generate
        self.samples_per_prompt = samples_per_prompt
        self.exact = exact
        self.name = "exact_match" if exact else "rouge_l"
        self.scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=RougeTokenizer())

    def score(self, answer: str, reference: str) -> float:
        if self.exact:
            return float(answer.strip() == reference.strip())
        return float(self.scorer.score(reference, answer)["rougeL"].fmeasure)

    def compare(self, old_model: str, new_model: str, items: Sequence[EvalItem]) -> list[Comparison]:
        if any(not item.reference for item in items):
            raise LLMOpsError("reference judge: every held-out item needs a reference answer")
        prompts = [item.prompt for item in items] * self.samples_per_prompt
        references = [item.reference for item in items] * self.samples_per_prompt
        new_answers = self.generate(new_model, prompts)
        old_answers = self.generate(old_model, prompts)
        return [
            Comparison(prompt, self.score(new, ref), self.score(old, ref))
            for prompt, ref, new, old in zip(prompts, references, new_answers, old_answers, strict=True)
        ]
