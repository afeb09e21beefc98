"""`llmops data …` through the real entry point: reports, registry commands and malformed inputs."""

import json
import re
import sys
from pathlib import Path

import pytest

from llmops.cli import main
from llmops.commands.common import console
from llmops.data.preferences import PreferenceCollector
from llmops.workspace import Workspace

MALFORMED = {
    "invalid_json.jsonl": (b'{"text": "ok"}\n{"text": "broken\n', ":2: invalid JSON"),
    "wrong_type.jsonl": (b'{"text": "ok"}\n{"text": ["a"]}\n', ":2: text: expected a string, got list"),
    "bad_utf8.jsonl": (b'{"text": "ok"}\n{"text": "\xc3\x28"}\n', ":2: invalid UTF-8"),
    "empty.jsonl": (b"", ":1: empty file"),
    "binary.jsonl": (bytes(range(256)), ":1: binary file"),
}


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["llmops", *args])
    monkeypatch.setattr(console, "width", 200)
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out + out.err


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_validate_malformed_files(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    content, expected = MALFORMED[name]
    path = tmp_path / name
    path.write_bytes(content)
    code, output = run(capsys, monkeypatch, "data", "validate", str(path))
    assert code == 1
    assert f"{path}{expected}" in " ".join(output.split())
    assert "Traceback" not in output


def test_corpus_skips_malformed_files_and_writes_nothing_when_all_fail(
        workspace: Workspace, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("empty.jsonl", "binary.jsonl", "bad_utf8.jsonl"):
        (folder / name).write_bytes(MALFORMED[name][0])
    common = ["-w", str(workspace.root), "--tokenizer", str(tiny_model_dir)]
    code, output = run(capsys, monkeypatch, "data", "corpus", str(folder), *common)
    assert code == 1 and "no text to write" in output and "Traceback" not in output
    assert list(workspace.stage_data_dir("cpt").iterdir()) == []
    for name in ("invalid_json.jsonl", "wrong_type.jsonl"):
        (folder / name).write_bytes(MALFORMED[name][0])
    (folder / "good.txt").write_text("Nimbus H2 售价 ¥309。\n\nReturns within 7 days.")
    code, output = run(capsys, monkeypatch, "data", "corpus", str(folder), *common, "--chunk-size", "32")
    flat = " ".join(output.split())
    assert code == 0, output
    # good.txt and the valid first lines of two .jsonl files (the same text: an exact duplicate)
    assert "documents read 3, skipped 5, exact duplicates 1" in flat
    assert f"{folder / 'binary.jsonl'}:1: binary file" in flat
    written = sorted(p.name for p in workspace.stage_data_dir("cpt").iterdir())
    assert len(written) == 2 and written[1] == written[0] + ".settings.yaml"
    (folder / "long.txt").write_text("Sampling point SP-17 is sampled weekly for coliforms and turbidity. " * 40)
    code, output = run(capsys, monkeypatch, "data", "corpus", str(folder), *common, "--chunk-size", "32")
    flat = " ".join(output.split())
    assert code == 0 and re.search(r"near-duplicates 0, repeated chunks [1-9]\d*, chunks", flat), output


def test_preset_self_instruct_list_show_validate(workspace: Workspace, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ws = ["-w", str(workspace.root)]
    code, output = run(capsys, monkeypatch, "data", "preset", *ws)
    assert code == 0 and "copied 14 documents" in output
    code, output = run(capsys, monkeypatch, "data", "self-instruct", "-n", "12", "--closing-rate", "0.5", "--preset",
                       *ws)
    assert code == 0, output
    name = json.loads(workspace.dataset_info_path.read_text()).popitem()[0]
    assert "with closing phrase 6" in " ".join(output.split())
    code, output = run(capsys, monkeypatch, "data", "list", *ws)
    assert code == 0 and name[:8] in output
    code, output = run(capsys, monkeypatch, "data", "show", name, *ws)
    assert code == 0 and "rows: 12" in output and "'formatting': 'sharegpt'" in output
    assert re.search(r"^created_at: \d{4}-\d\d-\d\d \d\d:\d\d$", output, re.M), output
    code, output = run(capsys, monkeypatch, "data", "validate", name, *ws)
    assert code == 0 and "12 records, format messages" in " ".join(output.split())
    code, output = run(capsys, monkeypatch, "data", "show", "../etc", *ws)
    assert code == 1 and "dataset name" in output


def test_self_instruct_names_skipped_documents_and_refuses_seed_tasks_without_llm(
        workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ws = ["-w", str(workspace.root)]
    (workspace.documents_dir / "manual.md").write_text(
        "# Filter Backwash\n\nA filter is backwashed when its head loss exceeds 2.4 m.\n\n- Close the influent "
        "valve.\n- Start the air scour for 3 minutes.\n- Open the backwash valve to 45 m/h.\n")
    (workspace.documents_dir / "notes.docx").write_bytes(b"PK\x03\x04")
    (workspace.documents_dir / "empty.txt").write_text("")
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"id": "w1", "task_type": "qa", "instruction": "What is the chlorine target?", "input": "", '
                     '"output": "0.5 to 1.5 mg/L.", "is_classification": false}\n')
    code, output = run(capsys, monkeypatch, "data", "self-instruct", "-n", "5", "--seed-tasks", str(seeds), *ws)
    assert code == 1 and f"--seed-tasks {seeds}: seed tasks drive the LLM bootstrap" in " ".join(output.split())
    assert json.loads(workspace.dataset_info_path.read_text()) == {}
    code, output = run(capsys, monkeypatch, "data", "self-instruct", "-n", "5", *ws)
    assert code == 0, output
    assert f"skipped {workspace.documents_dir / 'notes.docx'}: unsupported file type" in output
    assert f"skipped {workspace.documents_dir / 'empty.txt'}:1: empty file" in output


def test_prefs_stats_and_export(workspace: Workspace, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    ws = ["-w", str(workspace.root)]
    code, output = run(capsys, monkeypatch, "data", "prefs", "export", *ws)
    assert code == 1 and "no valid preference pairs" in output
    collector = PreferenceCollector(workspace)
    collector.collect_preference("q", "good", "bad", "A")
    collector.collect_preference("q2", "x", "y", "tie")
    code, output = run(capsys, monkeypatch, "data", "prefs", "stats", *ws)
    assert code == 0 and "valid_pairs" in output
    code, output = run(capsys, monkeypatch, "data", "prefs", "export", "--since", "2000-01-01", *ws)
    assert code == 0 and "exported 1 pairs" in output
    code, output = run(capsys, monkeypatch, "data", "prefs", "stats", "--since", "yesterday", *ws)
    assert code == 1 and "--since" in output


def test_convert_between_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "a.jsonl"
    source.write_text(json.dumps({"instruction": "价格？", "input": "", "output": "¥309"}) + "\n")
    target = tmp_path / "b.json"
    code, output = run(capsys, monkeypatch, "data", "convert", str(source), str(target), "--to", "sharegpt")
    assert code == 0, output
    assert json.loads(target.read_text()) == [{"conversations": [{"from": "human", "value": "价格？"},
                                                                 {"from": "gpt", "value": "¥309"}]}]
    source.write_text('{"instruction": "q", "output": 5}\n')
    code, output = run(capsys, monkeypatch, "data", "convert", str(source), str(target), "--to", "messages")
    assert code == 1 and f"{source}:1: output: expected a string" in output
