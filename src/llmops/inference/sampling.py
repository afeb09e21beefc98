"""The next token of every row of a running batch, each row with its own sampling parameters (spec 10.3.2).

The order is that of transformers' `generate`: repetition penalty over the tokens the row has seen (prompt and
output), then temperature, top-k and top-p, then a draw; rows with `temperature == 0` take the argmax of the
penalised logits, so a greedy row gives exactly what `generate(do_sample=False)` gives. A row whose logits hold
NaN or +inf (or are all -inf), or a sampled row whose probabilities are not a distribution, gets FAILED instead of
a token: it fails alone and the draw of the others goes on.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llmops.inference.types import Sampling

FAILED = -1  # the "token" of a row that cannot be decoded


@dataclass(frozen=True)
class RowSampling:
    """Sampling parameters of the rows as column tensors `[rows, 1]`."""

    temperature: torch.Tensor
    top_p: torch.Tensor
    top_k: torch.Tensor
    penalty: torch.Tensor
    greedy: torch.Tensor  # bool [rows]

    @classmethod
    def of(cls, samplings: Sequence[Sampling]) -> "RowSampling":
        def column(values: list[float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.tensor(values, dtype=dtype).unsqueeze(1)

        return cls(temperature=column([s.temperature for s in samplings]), top_p=column([s.top_p for s in samplings]),
                   top_k=column([s.top_k for s in samplings], torch.long),
                   penalty=column([s.repetition_penalty for s in samplings]),
                   greedy=torch.tensor([s.greedy for s in samplings], dtype=torch.bool))

    def select(self, rows: torch.Tensor) -> "RowSampling":
        return RowSampling(self.temperature[rows], self.top_p[rows], self.top_k[rows], self.penalty[rows],
                           self.greedy[rows])

    def extend(self, other: "RowSampling") -> "RowSampling":
        return RowSampling(*(torch.cat([a, b]) for a, b in zip(self.fields(), other.fields(), strict=True)))

    def fields(self) -> tuple[torch.Tensor, ...]:
        return self.temperature, self.top_p, self.top_k, self.penalty, self.greedy


def penalize(logits: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """transformers' repetition penalty: a seen token's logit is divided by the penalty if positive, else multiplied."""
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def next_tokens(logits: torch.Tensor, seen: torch.Tensor, rows: RowSampling) -> torch.Tensor:
    """One token per row (or FAILED) from `logits` `[rows, vocab]`; `seen` `[rows, vocab]` marks the tokens each
    row has seen."""
    logits = penalize(logits.float(), seen, rows.penalty)
    top, greedy = logits.max(dim=-1)  # the first maximum, as argmax; NaN if the row holds one
    broken = ~top.isfinite()
    if bool(rows.greedy.all()):
        return greedy.masked_fill(broken, FAILED)
    scaled = logits / rows.temperature.clamp_min(1e-5)
    ordered, order = scaled.sort(dim=-1, descending=True)
    rank = torch.arange(ordered.shape[-1]).unsqueeze(0)
    ordered = ordered.masked_fill((rows.top_k > 0) & (rank >= rows.top_k), float("-inf"))
    probs = ordered.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability mass ranked above each token
    probs = probs.masked_fill((before >= rows.top_p) & (rank > 0), 0.0)
    total = probs.sum(dim=-1, keepdim=True)
    usable = total.isfinite() & (total > 0)
    probs = torch.where(usable, probs, (rank == 0).float())  # an unusable row draws a stand-in, then fails
    drawn = order.gather(1, torch.multinomial(probs, 1)).squeeze(1)
    broken |= ~usable.squeeze(1) & ~rows.greedy
    return torch.where(rows.greedy, greedy, drawn).masked_fill(broken, FAILED)
