"""Fast ROUGE-L for the Self-Instruct novelty filter.

ROUGE-L F-measure is `2·LCS / (len(a) + len(b))` (the harmonic mean of LCS/len(a) and LCS/len(b)), computed
here exactly as the `rouge-score` package computes it, on the same token lists. Speed comes from the
bit-parallel LCS length algorithm (Hyyrö 2004): the candidate's token positions become bit masks and every
pool entry is advanced one token at a time, all entries at once, as numpy uint64 arithmetic. Candidates
longer than 64 tokens fall back to the same recurrence on Python integers.
"""

import re
from collections.abc import Iterable, Sequence

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD_BITS = 64


def tokenize(text: str) -> list[str]:
    """Lower-cased ASCII words and digits; each CJK character is one token (rouge-score drops CJK)."""
    return _TOKEN.findall(text.lower())


class RougeTokenizer:
    """`tokenize` as an object, the interface `rouge_score.rouge_scorer.RougeScorer(tokenizer=...)` expects."""

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)


def rouge_l_f(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F-measure of two token lists, exactly as `rouge_score` computes it."""
    if not a or not b:
        return 0.0
    return _fmeasure(_lcs_bits(a, b), len(a), len(b))


def _fmeasure(lcs: int, len_target: int, len_prediction: int) -> float:
    precision = lcs / len_prediction
    recall = lcs / len_target
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _lcs_bits(a: Sequence[str], b: Sequence[str]) -> int:
    """LCS length with arbitrary-width Python integers as bit vectors over `a`."""
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


class _Postings:
    """For one token, the pool entries it occurs in (once per occurrence), as a growing numpy array."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self._array = np.zeros(0, dtype=np.int64)

    def array(self) -> np.ndarray:
        if len(self._array) < len(self.items):
            tail = np.array(self.items[len(self._array) :], dtype=np.int64)
            self._array = np.concatenate([self._array, tail])
        return self._array


class RougePool:
    """A growing pool of token lists; a candidate's ROUGE-L F-measure against every entry, or the best one.

    `max_score` bounds each entry's LCS by how many of its tokens occur in the candidate (an inverted index
    and one `bincount`) and runs the exact bit-parallel LCS only where that bound could beat the best so far.
    """

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._vocab: dict[str, int] = {}
        self._postings: list[_Postings] = []
        self._tokens: list[list[str]] = []
        self._ids = np.zeros((0, 0), dtype=np.int64)  # (max length, capacity), padded with -1
        self._lengths = np.zeros(0, dtype=np.int64)
        self._size = 0
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return self._size

    def add(self, text: str) -> None:
        self.add_tokens(tokenize(text))

    def add_tokens(self, tokens: Sequence[str]) -> None:
        ids = [self._vocab.setdefault(t, len(self._vocab)) for t in tokens]
        while len(self._postings) < len(self._vocab):
            self._postings.append(_Postings())
        for token_id in ids:
            self._postings[token_id].items.append(self._size)
        self._grow(len(ids))
        self._ids[: len(ids), self._size] = ids
        self._lengths[self._size] = len(ids)
        self._tokens.append(list(tokens))
        self._size += 1

    def _grow(self, length: int) -> None:
        rows, capacity = self._ids.shape
        if self._size < capacity and length <= rows:
            return
        new_capacity = max(capacity * 2, 1024) if self._size >= capacity else capacity
        grown = np.full((max(rows, length), new_capacity), -1, dtype=np.int64)
        grown[:rows, :capacity] = self._ids
        lengths = np.zeros(new_capacity, dtype=np.int64)
        lengths[:capacity] = self._lengths
        self._ids, self._lengths = grown, lengths

    def scores(self, text: str) -> np.ndarray:
        """ROUGE-L F-measure of `text` against every pool entry, in insertion order."""
        tokens = tokenize(text)
        scores = np.zeros(self._size, dtype=np.float64)
        if tokens and self._size:
            everything = np.arange(self._size)
            scores[everything] = self._exact(tokens, everything)
        return scores

    def max_score(self, text: str) -> float:
        """The highest ROUGE-L F-measure of `text` against the pool (exact; 0.0 for an empty pool)."""
        tokens = tokenize(text)
        if not tokens or self._size == 0:
            return 0.0
        bound = self._upper_bounds(tokens)
        order = np.argsort(-bound, kind="stable")
        first = order[:64]
        best = float(self._exact(tokens, first).max())
        rest = order[64:][bound[order[64:]] >= best]
        return max(best, float(self._exact(tokens, rest).max())) if rest.size else best

    def _upper_bounds(self, tokens: Sequence[str]) -> np.ndarray:
        """Per entry, the F-measure its LCS would give if every entry token found in `tokens` matched."""
        known = {self._vocab[t] for t in tokens if t in self._vocab}
        lengths = self._lengths[: self._size]
        if not known:
            return np.zeros(self._size, dtype=np.float64)
        hits = np.bincount(np.concatenate([self._postings[i].array() for i in known]), minlength=self._size)
        lcs = np.minimum(np.minimum(hits, lengths), len(tokens)).astype(np.float64)
        precision, recall = lcs / np.maximum(lengths, 1), lcs / len(tokens)
        total = precision + recall
        return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)

    def _exact(self, tokens: Sequence[str], entries: np.ndarray) -> np.ndarray:
        lcs = self._lcs_numpy(tokens, entries) if len(tokens) <= _WORD_BITS else self._lcs_python(tokens, entries)
        lengths = self._lengths[entries]
        return np.array([_fmeasure(int(k), len(tokens), int(n)) if k else 0.0 for k, n in zip(lcs, lengths,
                                                                                             strict=True)])

    def _lcs_numpy(self, tokens: Sequence[str], entries: np.ndarray) -> np.ndarray:
        masks = np.zeros(len(self._vocab) + 1, dtype=np.uint64)  # last slot: padding and unknown tokens
        for i, token in enumerate(tokens):
            index = self._vocab.get(token)
            if index is not None:
                masks[index] |= np.uint64(1 << i)
        full = np.uint64((1 << len(tokens)) - 1)
        v = np.full(len(entries), full, dtype=np.uint64)
        longest = int(self._lengths[entries].max()) if len(entries) else 0
        for row in self._ids[:longest, entries]:
            u = v & masks[row]
            v = ((v + u) | (v - u)) & full
        return len(tokens) - np.bitwise_count(v).astype(np.int64)

    def _lcs_python(self, tokens: Sequence[str], entries: np.ndarray) -> np.ndarray:
        return np.array([_lcs_bits(tokens, self._tokens[i]) if self._tokens[i] else 0 for i in entries],
                        dtype=np.int64)
