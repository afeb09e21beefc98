"""What the simulated users ask: shop questions built from the preset documents' facts, split into the
arena's prompts and a held-out evaluation set that no training set and no arena prompt contains."""

import json
import random
from dataclasses import dataclass
from pathlib import Path

from llmops.data.templates import TASK_TYPES, make_example
from llmops.demo.preset import load_products, preset_texts
from llmops.demo.templates import shop_templates
from llmops.errors import LLMOpsError
from llmops.fileio import write_jsonl_atomic

MAX_MISSES = 5000  # consecutive draws without a new prompt before giving up


@dataclass(frozen=True)
class PromptSplit:
    arena: list[str]
    heldout: list[str]


def training_prompts(sft_file: Path) -> set[str]:
    """Every user turn of an SFT dataset in messages format (a JSON list of {"messages": [...]})."""
    rows = json.loads(sft_file.read_text(encoding="utf-8"))
    return {m["content"].strip() for row in rows for m in row["messages"] if m["role"] == "user"}


def user_prompts(count: int, seed: int, exclude: set[str]) -> list[str]:
    """`count` distinct questions of every task type, none of them in `exclude`."""
    templates = shop_templates(load_products())
    facts = templates.facts(preset_texts())
    rng = random.Random(seed)
    prompts: dict[str, None] = {}
    misses = 0
    while len(prompts) < count:
        example = make_example(rng.choice(TASK_TYPES), rng, facts, templates.makers)
        text = example.prompt.strip() if example is not None else ""
        if not text or text in exclude or text in prompts:
            misses += 1
            if misses > MAX_MISSES:
                raise LLMOpsError(f"only {len(prompts)} new distinct prompts found, {count} asked for")
            continue
        misses = 0
        prompts[text] = None
    return list(prompts)


def split_prompts(arena: int, heldout: int, seed: int, exclude: set[str]) -> PromptSplit:
    """Arena and held-out prompts, disjoint from each other and from `exclude` (the training prompts)."""
    pool = user_prompts(arena + heldout, seed, exclude)
    random.Random(seed + 1).shuffle(pool)
    return PromptSplit(arena=pool[:arena], heldout=pool[arena:])


def write_heldout(path: Path, prompts: list[str]) -> Path:
    """The held-out set in the evaluation format (`{"prompt": ...}` a line)."""
    write_jsonl_atomic(path, ({"prompt": prompt} for prompt in prompts))
    return path
