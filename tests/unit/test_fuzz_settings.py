"""Fuzz of settings files (`llmops.yaml`) and `--set` overrides: every field given wrong types and huge
values, unknown keys at every level, and broken YAML. Each is accepted or rejected with an LLMOpsError naming
the file and the key; the file is never rewritten, and `llmops` exits 1 with one line, no traceback."""

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops.cli import main
from llmops.errors import LLMOpsError
from llmops.settings import Settings, load_settings, settings_yaml
from llmops.workspace import Workspace

WRONG_VALUES: list[Any] = [None, "x", "", -1, 10**40, 1e308, float("nan"), True, [], ["a", 1], {"k": 1}, "../../etc"]
BROKEN_FILES: list[tuple[str, bytes]] = [
    ("tab_indent", b"data:\n\tchunk_size: 8\n"), ("unclosed", b"data: {chunk_size: 8\n"), ("list", b"- a\n- b\n"),
    ("scalar", b"42\n"), ("string", b"just text\n"), ("invalid_utf8", b"data:\n  tokenizer: \xff\xfe\n"),
    ("binary", bytes(range(256))), ("nul", b"data:\n  tokenizer: a\x00b\n"), ("nested", b"a: " + b"[" * 20_000),
    ("alias_bomb", b"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"), ("duplicate", b"data: {}\ndata: 1\n"),
    ("python_tag", b"data: !!python/object/apply:os.getcwd []\n"), ("utf16", "data: {}\n".encode("utf-16")),
    ("bom_list", b"\xef\xbb\xbf[1]"), ("tags", b"serve: !!binary aGVsbG8=\n"),
]


def settings_mutations() -> Iterator[tuple[str, dict[str, Any]]]:
    """The default settings with one field wrong, or an unknown key added, at a time."""
    defaults = Settings().model_dump()
    yield "unknown top-level key", {**defaults, "__x__": 1}
    for section, fields in defaults.items():
        if not isinstance(fields, dict):
            for wrong in WRONG_VALUES:
                yield f"{section}={wrong!r}", {**defaults, section: wrong}
            continue
        yield f"unknown key in {section}", {**defaults, section: {**fields, "__x__": 1}}
        yield f"{section} not a mapping", {**defaults, section: [1, 2]}
        for name in fields:
            for wrong in WRONG_VALUES:
                yield f"{section}.{name}={wrong!r}", {**defaults, section: {**fields, name: wrong}}


def _check(path: Path) -> str:
    original = path.read_bytes()
    try:
        load_settings(path)
    except LLMOpsError as exc:
        assert str(path) in str(exc), exc
        outcome = "error"
    else:
        outcome = "accepted"
    assert path.read_bytes() == original
    return outcome


def test_settings_files_with_wrong_fields(tmp_path: Path) -> None:
    outcomes: Counter[str] = Counter()
    path = tmp_path / "llmops.yaml"
    for label, raw in settings_mutations():
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        try:
            outcomes[_check(path)] += 1
        except AssertionError as exc:
            raise AssertionError(f"{label}: {exc}") from exc
    assert outcomes["error"] >= 200, outcomes


def test_unknown_keys_and_wrong_types_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "llmops.yaml"
    path.write_text("serve:\n  port: many\n  colour: red\nextra: 1\n", encoding="utf-8")
    with pytest.raises(LLMOpsError) as caught:
        load_settings(path)
    assert sorted(str(caught.value).splitlines()) == sorted([
        f"{path}: serve.port: Input should be a valid integer, unable to parse string as an integer",
        f"{path}: serve.colour: unknown key", f"{path}: extra: unknown key"])


def test_broken_yaml_files(tmp_path: Path) -> None:
    for label, content in BROKEN_FILES:
        path = tmp_path / f"{label}.yaml"
        path.write_bytes(content)
        assert _check(path) == "error", label


def test_overrides_are_checked_like_the_file() -> None:
    bad = ["data.chunk_size=many", "serve.port=70000", "nope=1", "data", "=1", "data.tokenizer.x=1",
           "serve=[1", "loop.rollout_stages=[0.5, 2]", "loop.judge=oracle", "serve.max_body_bytes=1e400"]
    for override in bad:
        try:
            load_settings(None, [override])
        except LLMOpsError as exc:
            assert str(exc), override
        else:
            raise AssertionError(f"{override}: accepted")


def test_cli_prints_one_line_for_a_bad_settings_file(workspace: Workspace, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    workspace.settings_path.write_text(settings_yaml(Settings()) + "serve:\n  port: [1]\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["llmops", "data", "list", "-w", str(workspace.root)])
    monkeypatch.setenv("COLUMNS", "500")
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    output = (captured.out + captured.err).strip()
    assert "Traceback" not in output and len(output.splitlines()) == 1
    assert output.startswith("error:") and "serve.port" in output
