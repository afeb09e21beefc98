"""Does CPT teach the domain? Held-out loss of the completion model vs the base it was trained from.

Builds (or reuses) the demo's tiny base, turns the bundled preset documents into the CPT corpus
(`build_corpus`, 512-token chunks), holds out 10% of the chunks (seeded), runs CPT on the rest through
`train_cpt` (LoRA, merged into completion-v1.0) and prints the mean token loss of both models on the held-out
chunks side by side: on whole chunks, and on 128-token windows (the length the base was pre-trained on).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cpt_heldout.py
"""

import argparse
import json
import random
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmops.data.corpus import build_corpus
from llmops.data.registry import publish_dataset
from llmops.demo.base_model import ensure_base_model
from llmops.demo.preset import copy_preset_documents
from llmops.train.pipeline import train_cpt
from llmops.workspace import init_workspace

CPT_OVERRIDES = ["learning_rate=1e-3", "num_train_epochs=3", "cutoff_len=512", "logging_steps=5"]


def split_corpus(corpus: Path, held_out: float, seed: int) -> tuple[list[dict[str, str]], list[str]]:
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    random.Random(seed).shuffle(rows)
    cut = max(1, int(len(rows) * held_out))
    return rows[cut:], [row["text"] for row in rows[:cut]]


@torch.no_grad()
def mean_loss(model_dir: str, texts: list[str], window: int | None) -> float:
    """Mean next-token loss over `texts` (each cut into `window`-token pieces when given)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        pieces = [ids[i:i + window] for i in range(0, len(ids), window)] if window else [ids]
        for piece in (p for p in pieces if len(p) > 1):
            out = model(torch.tensor([piece]), labels=torch.tensor([piece]))
            total += out.loss.item() * (len(piece) - 1)
            count += len(piece) - 1
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "llmops")
    parser.add_argument("--held-out", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    base = str(ensure_base_model(args.cache_dir))
    with tempfile.TemporaryDirectory(prefix="llmops-cpt-heldout-") as tmp:
        ws = init_workspace(Path(tmp) / "ws")
        documents = copy_preset_documents(ws.root / "documents" / "preset")
        corpus = build_corpus(ws, documents, tokenizer=base, chunk_size=512)
        train, held_out = split_corpus(corpus.path, args.held_out, args.seed)
        publish_dataset(ws, "cpt_train", ws.stage_data_dir("cpt") / "cpt_train.jsonl", train, "pt", "text")
        completion = train_cpt(ws, "cpt_train", base, CPT_OVERRIDES)
        print(f"{len(train)} training chunks, {len(held_out)} held-out chunks (seed {args.seed})")
        print(f"{'held-out mean token loss':<34}{'base':>10}{completion.name:>18}")
        for label, window in (("whole chunks (<= 512 tokens)", None), ("128-token windows", 128)):
            before, after = mean_loss(base, held_out, window), mean_loss(completion.path, held_out, window)
            print(f"{label:<34}{before:>10.3f}{after:>18.3f}")


if __name__ == "__main__":
    main()
