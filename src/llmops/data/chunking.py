"""Token-bounded chunks of a document, cut at paragraph, then sentence, then token boundaries.

A chunk is a contiguous slice of the document. Paragraphs are kept whole when they fit, long paragraphs are
cut at sentence ends, and a sentence longer than the chunk is cut between tokens, at character offsets (so
a character is never split). Every chunk is re-tokenised to check it holds at most `chunk_size` tokens.
"""

import re
from collections.abc import Callable

from transformers import PreTrainedTokenizerBase

from llmops.errors import LLMOpsError

Span = tuple[int, int]
_PARAGRAPH_END = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[。！？；]+[”」』）)]*|[.!?;]+[\"')\]]*(?=\s)|\n")


class TokenCounter:
    """Counts tokens of text with a HF fast tokenizer (no special tokens)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        if not tokenizer.is_fast:
            raise LLMOpsError(f"tokenizer {tokenizer.name_or_path}: a fast tokenizer is needed (character offsets)")
        self.tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids)

    def offsets(self, text: str) -> list[Span]:
        return list(self.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).offsets)


def _cut(text: str, span: Span, pattern: re.Pattern[str]) -> list[Span]:
    """`span` cut after every match of `pattern` into contiguous pieces."""
    start, end = span
    pieces, position = [], start
    for match in pattern.finditer(text, start, end):
        if match.end() > position:
            pieces.append((position, match.end()))
            position = match.end()
    if position < end:
        pieces.append((position, end))
    return pieces


def _token_split(text: str, span: Span, limit: int, counter: TokenCounter) -> list[Span]:
    """A span cut between tokens into contiguous pieces of at most `limit` tokens each."""
    start, end = span
    offsets = [(a + start, b + start) for a, b in counter.offsets(text[start:end])]
    pieces, first = [], 0
    while first < len(offsets):
        size = min(limit, len(offsets) - first)
        while True:
            stop = offsets[first + size][0] if first + size < len(offsets) else end
            piece = (offsets[first][0] if first else start, stop)
            if counter.count(text[piece[0] : piece[1]].strip()) <= limit or size == 1:
                break
            size -= 1
        pieces.append(piece)
        first += size
    return [p for p in pieces if p[1] > p[0]]


def segments(text: str, limit: int, counter: TokenCounter) -> list[tuple[Span, int]]:
    """Contiguous spans covering `text`, each of at most `limit` tokens, with their token counts."""
    def count(span: Span) -> int:  # chunks are stripped, and stripping can change the tokens
        return counter.count(text[span[0] : span[1]].strip())

    result = []
    for paragraph in _cut(text, (0, len(text)), _PARAGRAPH_END):
        if (tokens := count(paragraph)) <= limit:
            result.append((paragraph, tokens))
            continue
        for sentence in _cut(text, paragraph, _SENTENCE_END):
            pieces = [sentence] if count(sentence) <= limit else _token_split(text, sentence, limit, counter)
            result += [(piece, count(piece)) for piece in pieces]
    return result


def _pack(text: str, spans: list[tuple[Span, int]], first: int, limit: int,
          count: Callable[[str], int]) -> tuple[int, int]:
    """The end index (exclusive) of the longest run of spans from `first` whose text fits, and its tokens."""
    last, total = first, 0
    while last < len(spans) and total + spans[last][1] <= limit:
        total += spans[last][1]
        last += 1
    last = max(last, first + 1)
    while True:
        tokens = count(text[spans[first][0][0] : spans[last - 1][0][1]].strip())
        if tokens <= limit or last == first + 1:
            return last, tokens
        last -= 1


def chunk_text(text: str, chunk_size: int, counter: TokenCounter, overlap: int = 0) -> list[str]:
    """Chunks of at most `chunk_size` tokens; consecutive chunks share up to `overlap` tokens of whole segments."""
    if overlap >= chunk_size:
        raise LLMOpsError(f"chunk_overlap ({overlap}) must be smaller than chunk_size ({chunk_size})")
    spans = segments(text, chunk_size, counter)
    chunks, first = [], 0
    while first < len(spans):
        last, tokens = _pack(text, spans, first, chunk_size, counter.count)
        chunk = text[spans[first][0][0] : spans[last - 1][0][1]].strip()
        if chunk and tokens <= chunk_size:
            chunks.append(chunk)
        if last >= len(spans):
            break
        next_first, shared = last, 0
        while overlap and next_first - 1 > first and shared + spans[next_first - 1][1] <= overlap:
            next_first -= 1
            shared += spans[next_first][1]
        first = next_first
    return chunks
