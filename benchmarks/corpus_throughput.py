"""Corpus pipeline throughput: `DomainCorpusProcessor` vs the bare tokenizer's batch encode, side by side.

The text is the bundled preset documents recombined into `--mb` megabytes of distinct documents (each a
seeded random draw of preset paragraphs, so neither exact nor MinHash de-duplication drops them). The
pipeline normalises, de-duplicates (sha256 + MinHash LSH), cuts token-bounded chunks and counts their
tokens; the baseline is one `tokenizer(texts)` batch encode of the same documents, the least any
token-level pipeline has to do. Both use the same tokenizer: `--tokenizer` (a HF folder), else a byte-level
BPE trained on the preset documents (the demo's, vocabulary 4,000).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/corpus_throughput.py --mb 4 [--json PATH]
"""

import argparse
import json
import logging
import random
import re
import time
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from llmops.data.corpus import DomainCorpusProcessor, load_tokenizer
from llmops.data.documents import normalize_text
from llmops.demo.base_model import BaseModelSpec
from llmops.demo.preset import preset_texts
from llmops.demo.tokenizer import train_tokenizer


def documents(megabytes: float, seed: int) -> list[str]:
    """Distinct documents of about 4 KB, together `megabytes` MB of UTF-8, from preset paragraphs."""
    paragraphs = [p.strip() for text in preset_texts() for p in re.split(r"\n\s*\n", text) if len(p.strip()) > 40]
    rng = random.Random(seed)
    docs: list[str] = []
    size = 0
    while size < megabytes * 1e6:
        parts: list[str] = []
        while sum(len(p.encode()) for p in parts) < 4000:
            parts.append(rng.choice(paragraphs))
        doc = f"Document {len(docs)}\n\n" + "\n\n".join(parts)
        docs.append(doc)
        size += len(doc.encode())
    return docs


def run_pipeline(tokenizer: PreTrainedTokenizerBase, docs: list[str], chunk_size: int) -> dict[str, float]:
    """Stage times of the pipeline on `docs` (normalise and de-duplicate timed apart, then the whole run)."""
    processor = DomainCorpusProcessor(tokenizer, chunk_size=chunk_size)
    start = time.perf_counter()
    normalized = [normalize_text(doc) for doc in docs]
    normalize_s = time.perf_counter() - start
    start = time.perf_counter()
    processor.deduplicate(normalized)
    dedup_s = time.perf_counter() - start
    start = time.perf_counter()
    chunks = processor.process_documents(docs)
    total_s = time.perf_counter() - start
    stats = processor.stats
    return {"seconds": total_s, "normalize_s": normalize_s, "dedup_s": dedup_s, "tokens": stats.tokens,
            "chunks": len(chunks), "documents_kept": stats.documents - stats.exact_duplicates - stats.near_duplicates}


def run_baseline(tokenizer: PreTrainedTokenizerBase, docs: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    encoded = tokenizer(docs, add_special_tokens=False)["input_ids"]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": sum(len(ids) for ids in encoded)}


def table(megabytes: float, ours: dict[str, float], bare: dict[str, float]) -> str:
    rows = [("seconds", f"{ours['seconds']:.2f}", f"{bare['seconds']:.2f}"),
            ("MB/s", f"{megabytes / ours['seconds']:.2f}", f"{megabytes / bare['seconds']:.2f}"),
            ("tokens", f"{ours['tokens']:,.0f}", f"{bare['tokens']:,.0f}"),
            ("tokens/s", f"{ours['tokens'] / ours['seconds']:,.0f}", f"{bare['tokens'] / bare['seconds']:,.0f}")]
    lines = [f"{'':14}{'llmops pipeline':>18}{'bare batch encode':>20}"]
    lines += [f"{name:14}{a:>18}{b:>20}" for name, a, b in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=4.0, help="Megabytes of text.")
    parser.add_argument("--chunk-size", type=int, default=512, help="Tokens per chunk (spec: 512–2048).")
    parser.add_argument("--tokenizer", default="", help="HF tokenizer folder (default: the demo's BPE).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON to this file.")
    args = parser.parse_args()
    logging.getLogger("transformers").setLevel(logging.ERROR)  # documents exceed model_max_length on purpose
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else train_tokenizer(
        preset_texts(), BaseModelSpec().vocab_size)
    docs = documents(args.mb, args.seed)
    megabytes = sum(len(doc.encode()) for doc in docs) / 1e6
    bare = run_baseline(tokenizer, docs)
    ours = run_pipeline(tokenizer, docs, args.chunk_size)
    print(f"{len(docs):,} documents, {megabytes:.2f} MB, chunk size {args.chunk_size} tokens, "
          f"tokenizer {args.tokenizer or 'demo BPE (vocab 4000)'}")
    print(table(megabytes, ours, bare))
    print(f"pipeline stages: normalise {ours['normalize_s']:.2f} s, de-duplicate {ours['dedup_s']:.2f} s, "
          f"chunk + count the rest; {ours['chunks']:,.0f} chunks from {ours['documents_kept']:,.0f} documents kept")
    print(f"pipeline / bare encode time: {ours['seconds'] / bare['seconds']:.1f}x")
    summary: dict[str, Any] = {"megabytes": megabytes, "documents": len(docs), "chunk_size": args.chunk_size,
                               "pipeline": ours, "bare_encode": bare,
                               "pipeline_mb_s": megabytes / ours["seconds"], "bare_mb_s": megabytes / bare["seconds"]}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
