"""Domain corpus for CPT (spec 4.1): documents → clean, de-duplicated, token-bounded chunks → `{"text"}` jsonl.

`DomainCorpusProcessor.process_documents` is the spec's API; `build_corpus` is what `llmops data corpus`
runs: read files and process them (`process_corpus`, which the UI's "Process" previews), then write
`data/llmops/cpt/domain_corpus_<ts>.jsonl` atomically and register it (`publish_corpus`, the UI's "Save").
"""

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datasketch import MinHash, MinHashLSH
from rich.progress import Progress
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from llmops.data.chunking import TokenCounter, chunk_text
from llmops.data.documents import SUFFIXES, LoadResult, load_documents, normalize_text
from llmops.data.registry import DatasetRecord, publish_dataset, timestamped_path
from llmops.errors import LLMOpsError
from llmops.hub import check_model_source
from llmops.settings import updated
from llmops.workspace import Workspace

SHINGLE = 5
NUM_PERM = 128


@dataclass
class CorpusStats:
    documents: int = 0
    empty: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    duplicate_chunks: int = 0
    chunks: int = 0
    tokens: int = 0
    max_chunk_tokens: int = 0


@dataclass(frozen=True)
class CorpusReport:
    path: Path
    dataset: DatasetRecord
    stats: CorpusStats
    skipped: list[str] = field(default_factory=list)


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """A HF tokenizer from a folder or hub id, or an LLMOpsError saying which one could not be loaded."""
    if not name_or_path:
        raise LLMOpsError("no tokenizer: set data.tokenizer (or train.base_model) or pass --tokenizer")
    check_model_source(name_or_path, "tokenizer (--tokenizer, data.tokenizer or train.base_model)")
    try:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise LLMOpsError(f"tokenizer {name_or_path}: cannot be loaded ({exc})") from exc
    return tokenizer


def _shingles(text: str) -> set[bytes]:
    compact = "".join(text.lower().split())
    if len(compact) <= SHINGLE:
        return {compact.encode("utf-8")}
    return {compact[i : i + SHINGLE].encode("utf-8") for i in range(len(compact) - SHINGLE + 1)}


class DomainCorpusProcessor:
    """Normalise, de-duplicate (exact + MinHash LSH) and chunk documents by tokens of `tokenizer`."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase | str, chunk_size: int = 512, chunk_overlap: int = 0,
                 near_dup_threshold: float = 0.8) -> None:
        loaded = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        self.counter = TokenCounter(loaded)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.near_dup_threshold = near_dup_threshold
        self.stats = CorpusStats()

    def deduplicate(self, documents: Sequence[str]) -> list[str]:
        """Documents without exact duplicates and without near-duplicates (estimated Jaccard ≥ threshold)."""
        lsh = MinHashLSH(threshold=self.near_dup_threshold, num_perm=NUM_PERM)
        hashes: dict[str, MinHash] = {}
        seen: set[str] = set()
        kept = []
        for index, text in enumerate(documents):
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if digest in seen:
                self.stats.exact_duplicates += 1
                continue
            seen.add(digest)
            minhash = MinHash(num_perm=NUM_PERM)
            minhash.update_batch(list(_shingles(text)))
            if any(minhash.jaccard(hashes[key]) >= self.near_dup_threshold for key in lsh.query(minhash)):
                self.stats.near_duplicates += 1
                continue
            key = str(index)
            lsh.insert(key, minhash)
            hashes[key] = minhash
            kept.append(text)
        return kept

    def _chunk_text(self, text: str, chunk_size: int) -> list[str]:
        return chunk_text(text, chunk_size, self.counter, self.chunk_overlap)

    def process_documents(self, documents: Iterable[str], chunk_size: int | None = None,
                          progress: Progress | None = None) -> list[dict[str, str]]:
        """The spec's API: documents → `[{"text": chunk}, ...]`, each chunk at most `chunk_size` tokens."""
        size = chunk_size or self.chunk_size
        self.stats = CorpusStats()
        normalized = []
        for text in documents:
            self.stats.documents += 1
            clean = normalize_text(text)
            if clean:
                normalized.append(clean)
            else:
                self.stats.empty += 1
        unique = self.deduplicate(normalized)
        task = progress.add_task("chunking", total=len(unique)) if progress else None
        corpus, seen = [], set()
        for text in unique:
            for chunk in self._chunk_text(text, size):
                if chunk in seen:
                    self.stats.duplicate_chunks += 1
                    continue
                seen.add(chunk)
                tokens = self.counter.count(chunk)
                self.stats.tokens += tokens
                self.stats.max_chunk_tokens = max(self.stats.max_chunk_tokens, tokens)
                corpus.append({"text": chunk})
            if progress and task is not None:
                progress.advance(task)
        self.stats.chunks = len(corpus)
        return corpus


def _nothing_to_write(loaded: LoadResult) -> LLMOpsError:
    if not loaded.skipped:
        return LLMOpsError(f"no text to write: no documents ({', '.join(SUFFIXES)}) in the paths given")
    return LLMOpsError(f"no text to write: {len(loaded.skipped)} file(s) skipped: " + "; ".join(loaded.skipped))


@dataclass(frozen=True)
class ProcessedCorpus:
    """Documents processed into chunks, not yet written: what `publish_corpus` writes and registers."""

    rows: list[dict[str, str]]
    stats: CorpusStats
    skipped: list[str] = field(default_factory=list)


def process_corpus(workspace: Workspace, paths: Sequence[Path], *, tokenizer: str | None = None,
                   chunk_size: int | None = None, chunk_overlap: int | None = None,
                   near_dup_threshold: float | None = None, progress: Progress | None = None) -> ProcessedCorpus:
    """Read `paths` (files or folders) and process them into chunks, writing nothing. The numbers given replace
    the `data` settings and are checked like them, before anything is read."""
    settings = updated(workspace.settings.data, "corpus", chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                       near_dup_threshold=near_dup_threshold)
    loaded = load_documents(paths, settings.max_file_bytes)
    if not loaded.documents:
        raise _nothing_to_write(loaded)
    processor = DomainCorpusProcessor(
        tokenizer or settings.tokenizer or workspace.settings.train.base_model, chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap, near_dup_threshold=settings.near_dup_threshold,
    )
    corpus = processor.process_documents([d.text for d in loaded.documents], progress=progress)
    if not corpus:
        raise _nothing_to_write(loaded)
    return ProcessedCorpus(corpus, processor.stats, loaded.skipped)


def publish_corpus(workspace: Workspace, processed: ProcessedCorpus) -> CorpusReport:
    """Write `processed` as `cpt/domain_corpus_<ts>.jsonl` atomically and register it (kind pt)."""
    path = timestamped_path(workspace, "cpt", "domain_corpus", ".jsonl")
    dataset = publish_dataset(workspace, path.stem, path, processed.rows, "pt", "text")
    return CorpusReport(path, dataset, processed.stats, processed.skipped)


def build_corpus(workspace: Workspace, paths: Sequence[Path], *, tokenizer: str | None = None,
                 chunk_size: int | None = None, chunk_overlap: int | None = None,
                 near_dup_threshold: float | None = None, progress: Progress | None = None) -> CorpusReport:
    """`llmops data corpus`: `process_corpus`, then `publish_corpus`."""
    processed = process_corpus(workspace, paths, tokenizer=tokenizer, chunk_size=chunk_size,
                               chunk_overlap=chunk_overlap, near_dup_threshold=near_dup_threshold,
                               progress=progress)
    return publish_corpus(workspace, processed)
