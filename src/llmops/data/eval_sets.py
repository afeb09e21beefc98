"""Held-out evaluation sets: a registered dataset (kind and format `eval`, rows `{prompt, reference?}`) that no
training set contains.

An eval set is built from a prompts file (one prompt a line, or jsonl of {prompt, reference}), from the prompts
of voted arena battles, or by holding out a share of the newest SFT dataset's prompts; that share is then
removed from the SFT dataset (a new version of it is registered) and its answers become the references. Eval
sets live in `data/llmops/eval/`, are registered with their sha256 in the `datasets` table only (LLaMA-Factory
never reads them), and every training build (Self-Instruct, the preference export) drops their prompts.

The eval set the loop uses (`active_eval_set`): the file at `loop.eval_set` when one is there, else the newest
registered eval set.
"""

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from llmops import db
from llmops.data.formats import Record, load_valid, read_jsonl_text, read_records, record_problems, to_messages
from llmops.data.registry import (
    DatasetRecord,
    data_file,
    get_dataset,
    latest_dataset,
    list_datasets,
    publish_dataset,
    timestamped_path,
)
from llmops.errors import LLMOpsError, located
from llmops.fileio import read_text_file
from llmops.workspace import Workspace

KIND = "eval"
FORMAT = "eval"
FIX = "run `llmops data eval-set`"


@dataclass(frozen=True)
class EvalSetReport:
    """What a build registered: the eval set and, for a held-out share, the SFT dataset's new version."""

    dataset: DatasetRecord
    path: Path
    source: str  # prompts | arena | share
    references: int
    sft: DatasetRecord | None = None


def prompt_key(text: str) -> str:
    """What makes two prompts the same: the words, whitespace and case ignored."""
    return " ".join(text.split()).casefold()


def _unique(rows: Iterable[Record]) -> list[Record]:
    seen: set[str] = set()
    unique = []
    for row in rows:
        key = prompt_key(row["prompt"])
        if key and key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def _json_rows(path: Path, text: str) -> list[Record]:
    rows = []
    for number, row in read_jsonl_text(path, text):
        problems = record_problems(row, FORMAT)
        if problems:
            raise located(path, number, problems[0][0], problems[0][1])
        unknown = sorted(set(row) - {"prompt", "reference"})
        if unknown:
            raise located(path, number, unknown[0], "unknown field (a prompt has `prompt` and `reference`)")
        rows.append({"prompt": row["prompt"], **({"reference": row["reference"]} if row.get("reference") else {})})
    return rows


def read_prompts_file(path: Path, max_bytes: int) -> list[Record]:
    """Eval rows of a user's file: jsonl of {prompt, reference?} (a `.jsonl` file, or lines starting with `{`),
    else one prompt a line; checked as every user-named file is (regular, size-limited, UTF-8)."""
    text = read_text_file(path, max_bytes, "prompts file")
    lines = [line for line in text.splitlines() if line.strip()]
    if path.suffix == ".jsonl" or (lines and lines[0].lstrip().startswith("{")):
        return _json_rows(path, text)
    return [{"prompt": line.strip()} for line in lines]


def voted_arena_prompts(workspace: Workspace) -> list[str]:
    """The prompts of voted arena battles, oldest vote first."""
    table = db.battles
    query = select(table.c.prompt).where(table.c.vote.is_not(None)).order_by(table.c.voted_at, table.c.id)
    with workspace.engine.connect() as conn:
        return [str(prompt) for prompt in conn.execute(query).scalars()]


def publish_eval_set(workspace: Workspace, rows: Sequence[Record], source: str,
                     sft: DatasetRecord | None = None) -> EvalSetReport:
    """Write `rows` (de-duplicated by prompt) as `eval/eval_<ts>.jsonl` and register it (kind `eval`)."""
    unique = _unique(rows)
    if not unique:
        raise LLMOpsError(f"eval set from {source}: no prompts")
    path = timestamped_path(workspace, "eval", "eval", ".jsonl")
    record = publish_dataset(workspace, path.stem, path, unique, KIND, FORMAT, llamafactory=False)
    return EvalSetReport(record, path, source, sum(bool(r.get("reference")) for r in unique), sft)


def eval_set_from_prompts(workspace: Workspace, path: Path) -> EvalSetReport:
    return publish_eval_set(workspace, read_prompts_file(path, workspace.settings.data.max_file_bytes), "prompts")


def eval_set_from_arena(workspace: Workspace) -> EvalSetReport:
    prompts = voted_arena_prompts(workspace)
    if not prompts:
        raise LLMOpsError("eval set from the arena: no voted battles yet (collect votes or use --from-prompts)")
    return publish_eval_set(workspace, [{"prompt": p} for p in prompts], "arena")


def _exchange(record: Record, fmt: str) -> tuple[str, str]:
    """(last user turn, last assistant turn) of an SFT record."""
    turns = to_messages(record, fmt)["messages"]
    user = [t["content"] for t in turns if t["role"] == "user"]
    answer = [t["content"] for t in turns if t["role"] == "assistant"]
    return (user[-1] if user else "", answer[-1] if answer else "")


def eval_set_from_sft(workspace: Workspace, share: float, seed: int = 0,
                      dataset: str | None = None) -> EvalSetReport:
    """Hold out `share` of the newest SFT dataset's prompts (with their answers as references) and register the
    SFT dataset again (a new version, a new file) without any record of those prompts."""
    if not 0 < share < 1:
        raise LLMOpsError(f"--share {share}: must be between 0 and 1")
    record = get_dataset(workspace, dataset or latest_dataset(workspace, "sft"))
    path = data_file(workspace, record.file_name)
    records = load_valid(path, record.format)
    count = max(1, round(len(records) * share))
    if count >= len(records):
        raise LLMOpsError(f"dataset {record.name}: {len(records)} records are too few to hold out {share:.0%}")
    picked = [_exchange(records[i], record.format) for i in random.Random(seed).sample(range(len(records)), count)]
    held = {prompt_key(prompt) for prompt, _ in picked}
    kept = [r for r in records if prompt_key(_exchange(r, record.format)[0]) not in held]
    new_path = timestamped_path(workspace, "sft", f"{record.name}_train", path.suffix)
    sft = publish_dataset(workspace, record.name, new_path, kept, "sft", record.format)
    return publish_eval_set(workspace, [{"prompt": p, "reference": a} for p, a in picked], "share", sft)


def eval_sets(workspace: Workspace) -> list[DatasetRecord]:
    """The registered eval sets, oldest first."""
    return [d for d in list_datasets(workspace) if d.kind == KIND]


def active_eval_set(workspace: Workspace) -> Path | None:
    """The file at `loop.eval_set` when one is there, else the newest registered eval set; None when neither."""
    configured = workspace.settings.loop.eval_set
    if configured and (workspace.root / configured).exists():
        return workspace.root / configured
    registered = eval_sets(workspace)
    return data_file(workspace, registered[-1].file_name) if registered else None


def _file_prompts(path: Path, max_bytes: int) -> set[str]:
    return {prompt_key(row["prompt"]) for _, row in read_records(path, max_bytes)
            if isinstance(row, dict) and isinstance(row.get("prompt"), str)}


def held_out_prompts(workspace: Workspace) -> frozenset[str]:
    """The prompt keys of every registered eval set and of the file at `loop.eval_set`: no training set has them."""
    limit = workspace.settings.data.max_file_bytes
    paths = {data_file(workspace, d.file_name) for d in eval_sets(workspace)}
    active = active_eval_set(workspace)
    paths |= {active} if active is not None else set()
    return frozenset().union(*(_file_prompts(p, limit) for p in paths if p.exists()))


def record_prompt(record: Record, fmt: str) -> str:
    """The (last) user prompt of a training record in `fmt` (messages, sharegpt, alpaca, ranking, trl)."""
    if fmt in ("ranking", "trl"):
        turns = record["conversations" if fmt == "ranking" else "prompt"]
        return next((t["content"] for t in reversed(turns) if t["role"] == "user"), "")
    return _exchange(record, fmt)[0]


def held_out_flags(workspace: Workspace, records: Sequence[Any], fmt: str) -> list[bool]:
    """For each of `records`: whether its prompt is in an eval set (see `held_out_prompts`)."""
    held = held_out_prompts(workspace)
    if not held:
        return [False] * len(records)
    return [prompt_key(record_prompt(r, fmt)) in held for r in records]


def without_held_out(workspace: Workspace, records: Sequence[Any], fmt: str) -> list[Any]:
    """`records` less those whose prompt is in an eval set (see `held_out_prompts`)."""
    return [r for r, held in zip(records, held_out_flags(workspace, records, fmt), strict=True) if not held]
