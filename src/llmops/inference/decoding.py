"""One base model's running batch: the rows being decoded together, their KV cache and attention mask.

Rows join between steps: the newcomers' prompts run as one padded forward pass and their keys and values
are written into free slots of the batch's cache (`kvcache.py`); padding is masked out and every row keeps
its own positions. A finished row leaves at once, so the batch never waits for its longest row. A row that
cannot be decoded (its own prompt pass fails, or its logits are not finite) fails alone; the others go on.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from peft import PeftModel
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from llmops.errors import LLMOpsError
from llmops.inference.kvcache import KVSlots
from llmops.inference.sampling import FAILED, RowSampling, next_tokens
from llmops.inference.types import Completion, Sampling

BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in a mixed batch
Listener = Callable[[str | Completion | BaseException], None]


@dataclass
class Row:
    """One request in flight: its prompt, what it has produced, and where its text goes."""

    prompt_ids: list[int]
    model: str
    sampling: Sampling
    done: Callable[[Completion | BaseException], None]
    listener: Listener | None = None  # streaming: receives text pieces as they are decoded
    cancelled: Callable[[], bool] = lambda: False
    output: list[int] = field(default_factory=list)
    streamed: str = ""


@dataclass
class Base:
    """A loaded base model with its tokenizer and LoRA adapters (model name → peft adapter name)."""

    model: Any  # a transformers model, or a PeftModel once an adapter is loaded on it
    tokenizer: Any
    eos_ids: list[int]
    context: int  # the model's maximum positions
    vocab: int  # the model's vocabulary (columns of its logits)
    adapters: dict[str, str] = field(default_factory=dict)

    def forward(self, rows: Sequence[Row], **inputs: Any) -> torch.Tensor:
        """Last-position logits `[rows, vocab]`, each row through its own adapter."""
        if isinstance(self.model, PeftModel):
            inputs["adapter_names"] = [self.adapters.get(row.model, BASE_ADAPTER) for row in rows]
        logits: torch.Tensor = self.model(**inputs, use_cache=True, logits_to_keep=1).logits
        return logits[:, -1]


@dataclass(frozen=True)
class Prefill:
    """The joining rows' prompt pass (padded ids, mask, positions, its cache and last logits), not yet in the batch."""

    ids: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    cache: DynamicCache
    logits: torch.Tensor
    sampling: RowSampling


def check_cache_layout(model: Any) -> None:
    """Rows of different lengths share one cache only if every layer is a plain growing cache."""
    layers = DynamicCache(config=model.config).layers
    if any(type(layer) is not DynamicLayer for layer in layers):
        raise LLMOpsError(f"{model.config.name_or_path}: sliding-window or other special KV caches are not supported "
                          "by the embedded engine; serve this model from an upstream server (vLLM, SGLang)")


class DecodeBatch:
    """The rows of one base in flight; `step` makes one token for every row and admits `joining` ones."""

    def __init__(self, base: Base, max_rows: int) -> None:
        self.base = base
        self.rows: list[Row] = []
        self._slots = KVSlots(base.model.config.num_hidden_layers, max_rows)
        self._positions = torch.zeros(0, dtype=torch.long)
        self._last = torch.zeros(0, dtype=torch.long)
        self._seen = torch.zeros(0, 0, dtype=torch.bool)
        self._sampling = RowSampling.of([])

    def step(self, joining: Sequence[Row]) -> None:
        """One new token for every row in the batch, then the joining rows' prompts and first tokens."""
        self._drop([i for i, row in enumerate(self.rows) if row.cancelled()])
        if self.rows:
            mask = self._slots.step_mask()
            logits = self.base.forward(self.rows, input_ids=self._last.unsqueeze(1), attention_mask=mask,
                                       position_ids=self._positions.unsqueeze(1), past_key_values=self._slots.cache)
            self._slots.advance()
            self._positions += 1
            self._emit(logits)
        if joining:
            self._join(list(joining))

    def fail(self, error: BaseException) -> None:
        self.remove(lambda _: True, error)

    def remove(self, which: Callable[[Row], bool], error: BaseException) -> None:
        """Answer the rows `which` selects with `error` and take them out of the batch."""
        chosen = [i for i, row in enumerate(self.rows) if which(row)]
        for i in chosen:
            finish(self.rows[i], error)
        self._drop(chosen)

    def _join(self, rows: list[Row]) -> None:
        """Admit `rows` after one prompt pass. Nothing is in the batch before that pass succeeds; if it fails, each
        row is tried alone, so only a row whose own pass fails gets the error, and the running rows go on."""
        try:
            prefill = self._prefill(rows)
        except Exception as exc:
            if len(rows) == 1:
                finish(rows[0], exc)
            else:
                for row in rows:
                    self._join([row])
            return
        self._admit(rows, prefill)

    def _prefill(self, rows: list[Row]) -> Prefill:
        sampling = RowSampling.of([row.sampling for row in rows])
        width = max(len(row.prompt_ids) for row in rows)
        pad = self.base.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in rows])
        mask = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in rows])
        positions = (mask.cumsum(dim=1) - 1).clamp_min(0)
        cache = DynamicCache(config=self.base.model.config)
        logits = self.base.forward(rows, input_ids=ids, attention_mask=mask, position_ids=positions,
                                   past_key_values=cache)
        return Prefill(ids, mask, positions, cache, logits, sampling)

    def _admit(self, rows: list[Row], prefill: Prefill) -> None:
        """Put the prefilled `rows` in the batch (their keys and values in free slots) and emit their first tokens."""
        ids, mask, logits = prefill.ids, prefill.mask, prefill.logits
        layers = [layer for layer in prefill.cache.layers if isinstance(layer, DynamicLayer)]
        self._slots.add([layer.keys for layer in layers if layer.keys is not None],
                        [layer.values for layer in layers if layer.values is not None], mask.bool())
        seen = torch.zeros(len(rows), logits.shape[-1]).scatter_add_(1, ids, mask.float()) > 0
        first = len(self.rows)
        self.rows.extend(rows)
        self._positions = torch.cat([self._positions, prefill.positions[:, -1] + 1])
        self._last = torch.cat([self._last, torch.zeros(len(rows), dtype=torch.long)])
        self._seen = torch.cat([self._seen, seen]) if first else seen
        self._sampling = self._sampling.extend(prefill.sampling)
        self._emit(logits, first=first)

    def _emit(self, logits: torch.Tensor, first: int = 0) -> None:
        """Choose the next tokens of rows `first:` from their `logits`, hand them out, drop finished rows."""
        span = torch.arange(first, len(self.rows))
        tokens = next_tokens(logits, self._seen[first:], self._sampling.select(span))
        self._last[first:] = tokens
        self._seen[span, tokens] = True  # a FAILED row's -1 marks its last column; the row leaves below
        finished = [first + i for i, token in enumerate(tokens.tolist()) if self._append(self.rows[first + i], token)]
        self._drop(finished)

    def _append(self, row: Row, token: int) -> bool:
        """Add `token` to `row`; true when the row is finished (and answered). A FAILED row fails alone."""
        base = self.base
        if token == FAILED:
            finish(row, LLMOpsError(f"model {row.model!r}: the next token's logits or probabilities are not finite "
                                    f"(NaN or infinity) with {row.sampling}; only this request failed"))
            return True
        if token in base.eos_ids:
            finish(row, self._completion(row, "stop"))
            return True
        row.output.append(token)
        if row.listener is not None:
            self._stream(row, self.base.tokenizer.decode(row.output, skip_special_tokens=True))
        limit = min(row.sampling.max_tokens, base.context - len(row.prompt_ids))
        if len(row.output) >= limit:
            finish(row, self._completion(row, "length"))
            return True
        return False

    @staticmethod
    def _stream(row: Row, text: str, final: bool = False) -> None:
        """Send a streaming row its new text; until the end, a piece ending inside a multi-byte character waits."""
        if row.listener is None or not text.startswith(row.streamed) or text == row.streamed:
            return
        if final or not text.endswith("\ufffd"):
            row.listener(text[len(row.streamed):])
            row.streamed = text

    def _completion(self, row: Row, reason: str) -> Completion:
        text = self.base.tokenizer.decode(row.output, skip_special_tokens=True)
        self._stream(row, text, final=True)
        return Completion(text=text, prompt_tokens=len(row.prompt_ids), completion_tokens=len(row.output),
                          finish_reason=reason)

    def _drop(self, indices: list[int]) -> None:
        """Remove rows `indices`: each one's slot is taken by the batch's last row."""
        order = list(range(len(self.rows)))
        for i in sorted(indices, reverse=True):
            self._slots.remove(i)
            order[i] = order[-1]
            order.pop()
        if len(order) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in order]
        keep = torch.tensor(order, dtype=torch.long)
        self._positions, self._last, self._seen = self._positions[keep], self._last[keep], self._seen[keep]
        self._sampling = self._sampling.select(keep)


def finish(row: Row, result: Completion | BaseException) -> None:
    row.done(result)
    if row.listener is not None:
        row.listener(result)
