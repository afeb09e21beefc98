"""The decode loop's parts without a model: the slot KV cache and per-row sampling."""

import torch

from llmops.inference.kvcache import KVSlots
from llmops.inference.sampling import RowSampling, next_tokens, penalize
from llmops.inference.types import Sampling


def prompt(rows: list[list[float]]) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """One layer, one head, dim 1: row r's keys are its token values, left-padded with zeros."""
    width = max(len(r) for r in rows)
    keys = torch.tensor([[0.0] * (width - len(r)) + r for r in rows]).view(len(rows), 1, width, 1)
    mask = torch.tensor([[False] * (width - len(r)) + [True] * len(r) for r in rows])
    return [keys], [keys * 10], mask


def row_keys(slots: KVSlots) -> list[list[float]]:
    """Each row's unmasked keys, in order."""
    keys = slots.keys[0][: slots.rows, 0, slots.start : slots.end, 0]
    mask = slots.mask[: slots.rows, slots.start : slots.end]
    return [keys[i][mask[i]].tolist() for i in range(slots.rows)]


def step(slots: KVSlots, values: list[float]) -> None:
    mask = slots.step_mask()
    assert mask.shape == (slots.rows, 1, 1, slots.width + 1)
    key = torch.tensor(values).view(-1, 1, 1, 1)
    keys, stored_values = slots.write(0, key, key * 10)
    assert keys.shape[2] == slots.width + 1 and torch.equal(stored_values, keys * 10)
    slots.advance()


def test_rows_join_grow_and_leave_without_disturbing_the_others() -> None:
    slots = KVSlots(num_layers=1, max_rows=4)
    slots.add(*prompt([[1, 2], [3]]))
    step(slots, [4, 5])
    assert row_keys(slots) == [[1, 2, 4], [3, 5]]
    slots.add(*prompt([[6, 7, 8, 9]]))  # wider than the rows before it: right-aligned with them
    step(slots, [10, 11, 12])
    assert row_keys(slots) == [[1, 2, 4, 10], [3, 5, 11], [6, 7, 8, 9, 12]]
    slots.remove(0)  # the last row moves into slot 0
    assert row_keys(slots) == [[6, 7, 8, 9, 12], [3, 5, 11]]
    for n in range(200):  # past the buffer's columns: it is laid out again, contents kept
        step(slots, [100 + n, 300 + n])
    assert row_keys(slots)[1] == [3, 5, 11, *range(300, 500)]
    slots.remove(0)
    assert slots.start == slots.end - 203  # columns only the removed row used are no longer read
    slots.remove(0)
    assert slots.rows == 0
    slots.add(*prompt([[1]]))
    assert row_keys(slots) == [[1]]


def test_greedy_rows_take_the_penalised_argmax_and_sampled_rows_stay_in_their_top_k() -> None:
    torch.manual_seed(0)
    logits = torch.tensor([[2.0, 1.9, -1.0, 0.5]] * 4)
    seen = torch.tensor([[True, False, False, False]] * 4)
    rows = RowSampling.of([Sampling(temperature=0, repetition_penalty=1.2),  # 2.0 / 1.2 < 1.9
                           Sampling(temperature=0, repetition_penalty=1.0),
                           Sampling(temperature=2.0, top_k=2, top_p=1.0, repetition_penalty=1.0),
                           Sampling(temperature=1.0, top_k=0, top_p=1e-6, repetition_penalty=1.0)])
    assert penalize(logits, seen, rows.penalty)[0, 0] == 2.0 / 1.2
    draws = torch.stack([next_tokens(logits, seen, rows) for _ in range(300)])
    assert set(draws[:, 0].tolist()) == {1} and set(draws[:, 1].tolist()) == {0}
    assert set(draws[:, 2].tolist()) == {0, 1}  # a hot temperature, but only the top 2
    assert set(draws[:, 3].tolist()) == {0}  # the nucleus keeps at least the top token
    negative = penalize(torch.tensor([[-2.0]]), torch.tensor([[True]]), torch.tensor([[2.0]]))
    assert negative.item() == -4.0
