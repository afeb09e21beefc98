"""Fuzz of dataset files through `llmops data validate`: pt/sft/dpo records broken field by field, and
whole files truncated, binary, not UTF-8 or nested too deeply. Each is accepted or rejected with an error that
names the file (and the line of a bad record); none ends in a traceback, and nothing is written."""

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace

WRONG_VALUES: list[Any] = [None, True, 7, 1e308, "", "x", [], {}, ["a"], {"role": "user"}, "\ud800", "../../etc"]
SEEDS: dict[str, dict[str, Any]] = {
    "pt_text": {"text": "The kettle holds 1.7 litres."},
    "sft_messages": {"messages": [{"role": "user", "content": "How long is the warranty?"},
                                  {"role": "assistant", "content": "Two years."}]},
    "sft_sharegpt": {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
    "sft_alpaca": {"instruction": "Summarise", "input": "A long text.", "output": "A summary."},
    "dpo_ranking": {"conversations": [{"role": "user", "content": "Which lamp?"}],
                    "chosen": {"role": "assistant", "content": "The desk lamp."},
                    "rejected": {"role": "assistant", "content": "No idea."}},
}
RAW_FILES: list[tuple[str, bytes]] = [
    ("empty", b""), ("blank", b"\n \n\t\n"), ("binary", bytes(range(256)) * 4), ("nul", b'{"text": "a"}\x00\n'),
    ("invalid_utf8", b'{"text": "caf\xe9"}\n'), ("latin1_line2", b'{"text": "a"}\n{"text": "\xff\xfe"}\n'),
    ("nested_array", b"[" * 100_000 + b"]" * 100_000 + b"\n"), ("nested_object", b'{"a":' * 50_000 + b"1"),
    ("not_json", b"text: hello\n"), ("json_scalar", b"42\n"), ("utf16", '{"text": "hi"}\n'.encode("utf-16")),
]


def _record_mutations(seed: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in seed.items():
        yield f"{key}:missing", {k: v for k, v in seed.items() if k != key}
        for wrong in WRONG_VALUES:
            yield f"{key}={str(wrong)[:10]!r}", {**seed, key: wrong}
        if isinstance(value, list):
            yield f"{key}:first_turn_only", {**seed, key: value[:1]}
            yield f"{key}:turn_not_object", {**seed, key: ["text", *value[1:]]}
            yield f"{key}:turn_without_content", {**seed, key: [dict(list(value[0].items())[:1]), *value[1:]]}
    for record in (None, [], "text", 1):
        yield f"record={record!r}", record


def dataset_files(folder: Path) -> Iterator[tuple[str, Path, bool]]:
    """(label, file, record_level): a file per malformed input; record-level ones break line 2 of 3."""
    for kind, seed in SEEDS.items():
        for label, record in _record_mutations(seed):
            path = folder / f"{kind}_{len(list(folder.iterdir()))}.jsonl"
            lines = [json.dumps(seed), json.dumps(record), json.dumps(seed)]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            yield f"{kind} {label}", path, True
        text = json.dumps([seed, seed]).encode()
        for cut in (1, len(text) // 2, len(text) - 1):
            path = folder / f"{kind}_cut{cut}.json"
            path.write_bytes(text[:cut])
            yield f"{kind} truncated@{cut}", path, False
    for label, content in RAW_FILES:
        for suffix in (".jsonl", ".json"):
            path = folder / f"raw_{label}{suffix}"
            path.write_bytes(content)
            yield f"raw {label}{suffix}", path, False


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _outcome(workspace: Workspace, path: Path, record_level: bool) -> str:
    result = CliRunner().invoke(app, ["data", "validate", str(path), "--workspace", str(workspace.root)])
    if result.exit_code == 0:
        assert "ok" in result.output
        return "accepted"
    if isinstance(result.exception, LLMOpsError):
        assert str(path) in str(result.exception)
        return "error"
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert f"{path}:{2 if record_level else ''}" in result.output, result.output
    return "error"


def test_malformed_dataset_files_give_clear_errors(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "fuzz"
    folder.mkdir()
    before = _tree(workspace.root)
    outcomes: Counter[str] = Counter()
    for label, path, record_level in dataset_files(folder):
        try:
            outcomes[_outcome(workspace, path, record_level)] += 1
        except AssertionError as exc:
            raise AssertionError(f"{label}: {exc}") from exc
    assert outcomes["error"] >= 150, outcomes
    assert _tree(workspace.root) == before


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_the_seeds_themselves_are_valid(workspace: Workspace, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.jsonl"
    path.write_text(json.dumps(SEEDS[kind]) + "\n", encoding="utf-8")
    assert _outcome(workspace, path, True) == "accepted"
