"""The running batch's KV cache: per layer, a buffer `[slots, kv_heads, columns, head_dim]` written in place.

Row i of the batch lives in slot i. A decode step writes every row's new key and value at the same column
`end`; each row's own tokens sit right-aligned before it and the columns in front of them are masked out.
A row that leaves is replaced by the last row (one slot copied, nothing else moves); joining rows are written
into the next free slots, right-aligned at `end`. Columns before `start` serve no row. When the buffer runs
out of columns, the used span moves to a new buffer with room on both sides, so a step costs O(1) copying
rather than the whole-cache concatenation of transformers' DynamicCache. The first rows get only the slots they
need, the batch all `max_rows` once more join: a lone request does not zero and copy a buffer sized for the whole
batch.
"""

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

MIN_ROOM = 64  # columns of room made on each side when the buffer is laid out again


class SlotLayer(CacheLayerMixin):
    """What the model's attention layer `index` sees: it writes the step's column and reads the used span."""

    is_sliding = False

    def __init__(self, slots: "KVSlots", index: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.slots, self.index = slots, index
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """The buffers exist before any forward pass."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object,
               **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        return self.slots.write(self.index, key_states, value_states)

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.slots.width + query_length, 0

    def get_seq_length(self) -> int:
        return self.slots.width

    def get_max_cache_shape(self) -> int:
        return -1


class KVSlots:
    def __init__(self, num_layers: int, max_rows: int) -> None:
        self.num_layers, self.max_rows = num_layers, max_rows
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.mask = torch.zeros(0, 0, dtype=torch.bool)
        self.rows = self.start = self.end = 0
        self.widest = 0  # the widest prompt group seen: room kept in front for the next ones
        self.cache = Cache(layers=[SlotLayer(self, i) for i in range(num_layers)])

    @property
    def width(self) -> int:
        return self.end - self.start

    def step_mask(self) -> torch.Tensor:
        """The 4D attention mask `[rows, 1, 1, width + 1]` of a decode step, which writes column `end`."""
        if self.end == self.mask.shape[1]:
            self._relayout()
        self.mask[: self.rows, self.end] = True
        return self.mask[: self.rows, self.start : self.end + 1].view(self.rows, 1, 1, -1)

    def write(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self.keys[layer], self.values[layer]
        keys[: self.rows, :, self.end] = key[:, :, 0]
        values[: self.rows, :, self.end] = value[:, :, 0]
        return keys[: self.rows, :, self.start : self.end + 1], values[: self.rows, :, self.start : self.end + 1]

    def advance(self) -> None:
        """The step's column is written in every layer."""
        self.end += 1

    def add(self, keys: list[torch.Tensor], values: list[torch.Tensor], mask: torch.Tensor) -> None:
        """Put rows (their prompt's keys and values `[rows, heads, width, dim]` and mask) in the next slots."""
        count, width = mask.shape
        self.widest = max(self.widest, width)
        if not self.keys:
            self._allocate(keys[0])
        if width > self.end or self.rows + count > self.mask.shape[0]:
            self._relayout(self.rows + count)
        first, left = self.rows, self.end - width
        for layer in range(self.num_layers):
            self.keys[layer][first : first + count, :, left : self.end] = keys[layer]
            self.values[layer][first : first + count, :, left : self.end] = values[layer]
        self.mask[first : first + count] = False
        self.mask[first : first + count, left : self.end] = mask
        self.rows += count
        self.start = min(self.start, left) if first else left

    def remove(self, slot: int) -> None:
        """Take out the row in `slot`: the last row moves into it."""
        last = self.rows - 1
        if slot != last:
            for tensor in (*self.keys, *self.values):
                tensor[slot, :, self.start : self.end] = tensor[last, :, self.start : self.end]
            self.mask[slot] = self.mask[last]
        self.rows -= 1
        used = self.mask[: self.rows, self.start : self.end].any(dim=0).nonzero()
        self.start = self.start + int(used[0]) if len(used) else self.end

    def _allocate(self, like: torch.Tensor) -> None:
        shape = (0, like.shape[1], 0, like.shape[3])
        self.keys = [like.new_zeros(shape) for _ in range(self.num_layers)]
        self.values = [like.new_zeros(shape) for _ in range(self.num_layers)]

    def _relayout(self, rows: int = 0) -> None:
        """Move the used columns to a new buffer with room for the widest prompt in front and as much behind, and
        slots for at least `rows` rows."""
        front = max(self.widest, MIN_ROOM)
        capacity = front + self.width + max(self.width, MIN_ROOM)
        slots = self.mask.shape[0]
        if rows > slots:  # a first request gets what it needs; once rows share the batch, it gets all of them
            slots = self.max_rows if slots else rows
        span, used = slice(self.start, self.end), slice(0, self.rows)
        for tensors in (self.keys, self.values):
            for layer, old in enumerate(tensors):
                new = old.new_zeros(slots, old.shape[1], capacity, old.shape[3])
                new[used, :, front : front + self.width] = old[used, :, span]
                tensors[layer] = new
        mask = torch.zeros(slots, capacity, dtype=torch.bool)
        mask[used, front : front + self.width] = self.mask[used, span]
        self.mask = mask
        self.start, self.end = front, front + self.width
