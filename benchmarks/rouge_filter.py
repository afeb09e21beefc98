"""ROUGE-L novelty filter: the project's `RougePool` vs the `rouge-score` package, side by side.

Self-Instruct rejects a candidate instruction whose ROUGE-L F-measure against any pool instruction is at
least 0.7. This benchmark filters `--candidates` (default 2,000) against a pool of `--pool` (default 20,000)
instruction-like sentences built from the bundled preset documents (about half of the candidates are light
edits of pool entries, so both decisions occur). Both implementations see the same token lists
(`llmops.data.rouge.tokenize`). `rouge-score` is far too slow for all 2,000 × 20,000 pairs within a short run,
so it filters the first `--reference-candidates` candidates (default 12) and its time is extrapolated per
candidate; the decisions and maximum scores are compared on those candidates.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rouge_filter.py [--pool N] [--candidates N]
"""

import argparse
import random
import re
import time

from rouge_score import rouge_scorer

from llmops.data.rouge import RougePool, RougeTokenizer
from llmops.demo.preset import preset_texts

THRESHOLD = 0.7


def sentences() -> list[str]:
    """Distinct sentences of the preset documents, 4 to 60 tokens long."""
    found: set[str] = set()
    for text in preset_texts():
        for part in re.split(r"(?<=[。！？.!?])\s*|\n+", text):
            part = part.strip(" -*#|")
            if 4 <= len(RougeTokenizer().tokenize(part)) <= 60:
                found.add(part)
    return sorted(found)


def build_data(pool_size: int, candidates: int, seed: int) -> tuple[list[str], list[str]]:
    """A pool of instruction-like texts and candidates, half of them light edits of pool entries."""
    rng = random.Random(seed)
    base = sentences()
    rng.shuffle(base)
    held_out, base = base[: len(base) // 4], base[len(base) // 4 :]  # fresh candidates come from these
    pool = [rng.choice(base) + " " + rng.choice(base) if i >= len(base) else base[i] for i in range(pool_size)]
    rng.shuffle(pool)
    chosen = []
    for i in range(candidates):
        if i % 2:
            words = rng.choice(pool).split()
            words[rng.randrange(len(words))] = rng.choice(["new", "其他", "another", "different"])
            chosen.append(" ".join(words))
        else:
            chosen.append(rng.choice(held_out) + " " + rng.choice(["please", "briefly", "请简要回答", "in detail"]))
    return pool, chosen


def project(pool: list[str], candidates: list[str]) -> tuple[list[float], float, float]:
    """Max ROUGE-L of each candidate; seconds to index the pool; seconds to score the candidates."""
    start = time.perf_counter()
    index = RougePool(pool)
    indexed = time.perf_counter()
    scores = [index.max_score(candidate) for candidate in candidates]
    return scores, indexed - start, time.perf_counter() - indexed


def reference(pool: list[str], candidates: list[str]) -> tuple[list[float], float]:
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=RougeTokenizer())
    start = time.perf_counter()
    scores = [max(scorer.score(target, candidate)["rougeL"].fmeasure for target in pool) for candidate in candidates]
    return scores, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=20_000)
    parser.add_argument("--candidates", type=int, default=2_000)
    parser.add_argument("--reference-candidates", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pool, candidates = build_data(args.pool, args.candidates, args.seed)
    ours, index_s, ours_s = project(pool, candidates)
    sample = min(args.reference_candidates, len(candidates))
    theirs, theirs_s = reference(pool, candidates[:sample])
    same_scores = ours[:sample] == theirs
    same_decisions = [s >= THRESHOLD for s in ours[:sample]] == [s >= THRESHOLD for s in theirs]
    ours_per, theirs_per = ours_s / len(candidates), theirs_s / sample
    rejected = sum(s >= THRESHOLD for s in ours)
    print(f"pool {len(pool):,} instructions, {len(candidates):,} candidates, threshold {THRESHOLD}")
    print(f"{'':28}{'llmops RougePool':>20}{'rouge-score':>20}")
    print(f"{'candidates scored':28}{len(candidates):>20,}{sample:>20,}")
    print(f"{'seconds (measured)':28}{ours_s:>20.2f}{theirs_s:>20.2f}")
    print(f"{'ms per candidate':28}{ours_per * 1e3:>20.2f}{theirs_per * 1e3:>20.1f}")
    print(f"{'seconds for all candidates':28}{ours_s:>20.2f}{theirs_per * len(candidates):>19.0f}*")
    print(f"pool indexing: {index_s:.2f} s; rejected as near-duplicates: {rejected:,} of {len(candidates):,}")
    sample_rejected = sum(s >= THRESHOLD for s in theirs)
    print(f"on the {sample} candidates both scored ({sample_rejected} rejected, {sample - sample_rejected} kept): "
          f"identical max scores {same_scores}, identical decisions {same_decisions}")
    print(f"speed-up: {theirs_per / ours_per:.0f}x   (* extrapolated from {sample} candidates)")
    if not (same_scores and same_decisions):
        raise SystemExit("the implementations disagree")


if __name__ == "__main__":
    main()
