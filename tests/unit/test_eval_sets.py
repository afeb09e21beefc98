"""The held-out evaluation set: built from a prompts file, the arena's voted battles or a held-out share of the
newest SFT dataset (removed from it), registered with its sha256 outside dataset_info.json, and kept out of the
training sets that are built afterwards."""

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmops import db
from llmops.cli import app
from llmops.data import eval_sets
from llmops.data.formats import read_records
from llmops.data.preferences import PreferenceCollector, export_preferences
from llmops.data.registry import (
    dataset_path,
    file_sha256,
    get_dataset,
    latest_dataset,
    publish_dataset,
    read_dataset_info,
    validate_registered,
)
from llmops.data.self_instruct import generate_sft_dataset
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace, open_workspace

runner = CliRunner()


def _rows(path: Path) -> list[Any]:
    return [row for _, row in read_records(path)]


def _sft(ws: Workspace, n: int, name: str = "sft_small") -> None:
    records = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"question {i}?"},
                             {"role": "assistant", "content": f"answer {i}."}]} for i in range(n)]
    publish_dataset(ws, name, ws.stage_data_dir("sft") / f"{name}.json", records, "sft", "messages")


def _assert_registered(ws: Workspace, report: eval_sets.EvalSetReport) -> None:
    record = get_dataset(ws, report.dataset.name)
    assert (record.kind, record.format) == ("eval", "eval")
    assert record.sha256 == file_sha256(report.path) and len(record.sha256) == 64
    assert record.name not in read_dataset_info(ws)  # LLaMA-Factory never reads an eval set
    assert validate_registered(ws, record.name).ok
    assert eval_sets.active_eval_set(ws) == report.path


def test_from_a_prompts_file_one_a_line_or_jsonl(workspace: Workspace, tmp_path: Path) -> None:
    lines = tmp_path / "prompts.txt"
    lines.write_text("What is a licence?\n\n  what is a  LICENCE? \nHow do I cite it?\n")
    report = eval_sets.eval_set_from_prompts(workspace, lines)
    assert _rows(report.path) == [{"prompt": "What is a licence?"}, {"prompt": "How do I cite it?"}]
    assert (report.source, report.references) == ("prompts", 0)
    _assert_registered(workspace, report)
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text(json.dumps({"prompt": "Who may copy it?", "reference": "Anyone."}) + "\n"
                     + json.dumps({"prompt": "Is it free?"}) + "\n")
    report = eval_sets.eval_set_from_prompts(workspace, jsonl)
    assert _rows(report.path) == [{"prompt": "Who may copy it?", "reference": "Anyone."}, {"prompt": "Is it free?"}]
    assert report.references == 1 and report.dataset.rows == 2
    _assert_registered(workspace, report)


def test_a_bad_prompts_file_is_refused_with_its_line(workspace: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"prompt": ""}) + "\n")
    with pytest.raises(LLMOpsError, match=r"bad.jsonl:2: prompt: empty"):
        eval_sets.eval_set_from_prompts(workspace, bad)
    bad.write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"prompt": "Free?", "referenc": "Yes."}) + "\n")
    with pytest.raises(LLMOpsError, match=r"bad.jsonl:2: referenc: unknown field"):
        eval_sets.eval_set_from_prompts(workspace, bad)
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    with pytest.raises(LLMOpsError, match="FIFO"):
        eval_sets.eval_set_from_prompts(workspace, fifo)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(LLMOpsError, match="no prompts"):
        eval_sets.eval_set_from_prompts(workspace, empty)
    assert eval_sets.eval_sets(workspace) == []


def _battle(ws: Workspace, number: int, prompt: str, vote: str | None) -> None:
    with ws.engine.begin() as conn:
        conn.execute(db.battles.insert().values(
            id=f"b{number}", created_at=time.time(), user="u", prompt=prompt, model_a="chat-v1.0", model_b="m",
            response_a="x", response_b="y", sampling={}, vote=vote, voted_at=None if vote is None else float(number)))


def test_from_the_arena_takes_the_prompts_of_voted_battles(workspace: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="no voted battles"):
        eval_sets.eval_set_from_arena(workspace)
    _battle(workspace, 1, "voted first", "a")
    _battle(workspace, 2, "never voted", None)
    _battle(workspace, 3, "voted again", "tie")
    _battle(workspace, 4, "voted first", "b")
    report = eval_sets.eval_set_from_arena(workspace)
    assert [r["prompt"] for r in _rows(report.path)] == ["voted first", "voted again"]
    _assert_registered(workspace, report)


def test_a_held_out_share_leaves_the_sft_dataset(workspace: Workspace) -> None:
    _sft(workspace, 20)
    old_file = dataset_path(workspace, "sft_small")
    report = eval_sets.eval_set_from_sft(workspace, 0.25, seed=3)
    held = _rows(report.path)
    assert len(held) == 5 and report.references == 5
    assert all(row["reference"] == row["prompt"].replace("question", "answer").replace("?", ".") for row in held)
    _assert_registered(workspace, report)
    sft = get_dataset(workspace, "sft_small")
    assert report.sft == sft and sft.version == 2 and sft.rows == 15
    assert latest_dataset(workspace, "sft") == "sft_small"
    new_file = dataset_path(workspace, "sft_small")
    assert new_file != old_file and old_file.exists()  # the first version stays on disk
    assert read_dataset_info(workspace)["sft_small"]["file_name"] == sft.file_name
    training = {turn["content"] for record in _rows(new_file) for turn in record["messages"]}
    assert not training & {row["prompt"] for row in held}
    assert len(training & {f"question {i}?" for i in range(20)}) == 15
    with pytest.raises(LLMOpsError, match="between 0 and 1"):
        eval_sets.eval_set_from_sft(workspace, 1.0)


def test_a_share_needs_an_sft_dataset_with_enough_rows(workspace: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="no sft dataset is registered"):
        eval_sets.eval_set_from_sft(workspace, 0.1)
    _sft(workspace, 1)
    with pytest.raises(LLMOpsError, match="too few"):
        eval_sets.eval_set_from_sft(workspace, 0.1)


def test_the_file_at_loop_eval_set_wins_when_it_is_there(workspace: Workspace, tmp_path: Path) -> None:
    assert eval_sets.active_eval_set(workspace) is None
    prompts = tmp_path / "p.txt"
    prompts.write_text("registered?\n")
    registered = eval_sets.eval_set_from_prompts(workspace, prompts).path
    assert eval_sets.active_eval_set(workspace) == registered
    legacy = workspace.root / workspace.settings.loop.eval_set
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_text(json.dumps({"prompt": "legacy?"}) + "\n")
    assert eval_sets.active_eval_set(workspace) == legacy
    assert eval_sets.held_out_prompts(workspace) == {"registered?", "legacy?"}
    assert eval_sets.active_eval_set(open_workspace(workspace.root, ["loop.eval_set="])) == registered


def test_preference_export_drops_pairs_on_held_out_prompts(workspace: Workspace, tmp_path: Path) -> None:
    collector = PreferenceCollector(workspace)
    for i in range(5):
        collector.collect_preference(f"Question {i}", f"good {i}", f"bad {i}", "A")
    prompts = tmp_path / "p.txt"
    prompts.write_text("question 1\n  QUESTION   3 \n")
    eval_sets.eval_set_from_prompts(workspace, prompts)
    report = export_preferences(workspace)
    for path in (report.path, report.latest_path):
        assert [r["conversations"][0]["content"] for r in _rows(path)] == ["Question 0", "Question 2", "Question 4"]
    assert [r["prompt"][0]["content"] for r in _rows(report.trl_path)] == ["Question 0", "Question 2", "Question 4"]


def test_self_instruct_drops_held_out_prompts(workspace: Workspace, tmp_path: Path) -> None:
    documents = tmp_path / "docs"
    documents.mkdir()
    (documents / "licence.md").write_text(
        "# Licence\n\nA licence is a grant of permission to copy and share a work. Anyone may copy the work. "
        "You must keep the notice. The licence has 3 conditions: attribution, share-alike and no warranty.\n\n"
        "## Warranty\n\nThe work comes with no warranty of any kind. The authors are not liable for damages.\n")
    first = generate_sft_dataset(workspace, 12, documents=[documents], seed=5)
    prompts = [record["messages"][-2]["content"] for record in _rows(first.path)]
    held = tmp_path / "held.jsonl"
    held.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts[:3]))
    eval_sets.eval_set_from_prompts(workspace, held)
    second = generate_sft_dataset(workspace, 12, documents=[documents], seed=5)
    again = [record["messages"][-2]["content"] for record in _rows(second.path)]
    assert again == prompts[3:]


def test_eval_set_command_for_each_source(workspace: Workspace, tmp_path: Path) -> None:
    w = str(workspace.root)
    _sft(workspace, 10)
    result = runner.invoke(app, ["data", "eval-set", "-w", w, "--share", "0.2"])
    assert result.exit_code == 0, result.output
    assert "2 prompts, 2 with a reference" in result.output and "version 2, 8 rows" in result.output
    prompts = tmp_path / "p.txt"
    prompts.write_text("one?\ntwo?\n")
    result = runner.invoke(app, ["data", "eval-set", "-w", w, "--from-prompts", str(prompts)])
    assert result.exit_code == 0 and "2 prompts, 0 with a reference" in result.output, result.output
    _battle(workspace, 1, "arena?", "a")
    result = runner.invoke(app, ["data", "eval-set", "-w", w, "--from-arena"])
    assert result.exit_code == 0 and "1 prompts" in result.output, result.output
    assert [d.rows for d in eval_sets.eval_sets(workspace)] == [2, 2, 1]
    both = runner.invoke(app, ["data", "eval-set", "-w", w, "--from-arena", "--from-prompts", str(prompts)])
    assert both.exit_code != 0 and "give one source" in str(both.exception or both.output)
