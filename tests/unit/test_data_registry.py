"""Dataset registry: dataset_info.json entries LLaMA-Factory reads, versions, sha256, name checks."""

import json
from pathlib import Path

import pytest
from llamafactory.data.parser import get_dataset_list

from llmops.data.registry import (
    check_name,
    dataset_path,
    get_dataset,
    latest_dataset,
    list_datasets,
    publish_dataset,
    register_dataset,
    validate_dataset,
)
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace

pytestmark = pytest.mark.store

TEXT = [{"text": "第一段领域文本"}, {"text": "second chunk"}]


def test_register_writes_dataset_info_and_table(workspace: Workspace) -> None:
    path = workspace.stage_data_dir("cpt") / "corpus.jsonl"
    record = publish_dataset(workspace, "corpus", path, TEXT, "pt", "text")
    assert (record.version, record.rows, record.file_name) == (1, 2, "cpt/corpus.jsonl")
    info = json.loads(workspace.dataset_info_path.read_text())
    assert info["corpus"] == {"file_name": "cpt/corpus.jsonl", "columns": {"prompt": "text"}}
    assert get_dataset(workspace, "corpus") == record
    assert dataset_path(workspace, "corpus") == path.resolve()
    assert [d.name for d in list_datasets(workspace)] == ["corpus"]


def test_version_changes_only_with_content(workspace: Workspace) -> None:
    path = workspace.stage_data_dir("cpt") / "c.jsonl"
    publish_dataset(workspace, "c", path, TEXT, "pt", "text")
    assert register_dataset(workspace, "c", path, "pt", "text").version == 1
    assert publish_dataset(workspace, "c", path, TEXT[:1], "pt", "text").version == 2


def test_llamafactory_parses_every_registered_format(workspace: Workspace) -> None:
    rows = {
        "messages": [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
        "ranking": [{"conversations": [{"role": "user", "content": "q"}],
                     "chosen": {"role": "assistant", "content": "a"},
                     "rejected": {"role": "assistant", "content": "b"}}],
        "alpaca": [{"instruction": "q", "input": "", "output": "a"}],
    }
    for fmt, records in rows.items():
        publish_dataset(workspace, fmt, workspace.data_dir / "sft" / f"{fmt}.json", records, "sft", fmt)
    attrs = {a.dataset_name: a for a in get_dataset_list(list(rows), str(workspace.data_dir))}
    assert attrs["sft/messages.json"].formatting == "sharegpt"
    assert attrs["sft/messages.json"].role_tag == "role"
    assert attrs["sft/ranking.json"].ranking and attrs["sft/ranking.json"].chosen == "chosen"
    assert attrs["sft/alpaca.json"].formatting == "alpaca"


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "a..b", "x" * 201])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(LLMOpsError, match="dataset name"):
        check_name(name)


def test_files_outside_the_data_folder_are_refused(workspace: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"text": "a"}\n')
    with pytest.raises(LLMOpsError, match="must stay inside"):
        register_dataset(workspace, "x", outside, "pt", "text")
    with pytest.raises(LLMOpsError, match="must stay inside"):
        register_dataset(workspace, "x", Path("../../outside.jsonl"), "pt", "text")


def test_failed_registration_leaves_no_file(workspace: Workspace) -> None:
    path = workspace.stage_data_dir("sft") / "bad.json"
    with pytest.raises(LLMOpsError):
        publish_dataset(workspace, "../bad", path, TEXT, "sft", "text")
    assert not path.exists()
    assert json.loads(workspace.dataset_info_path.read_text()) == {}


def test_validate_dataset_by_name_and_detects_changes(workspace: Workspace) -> None:
    path = workspace.stage_data_dir("cpt") / "c.jsonl"
    publish_dataset(workspace, "c", path, TEXT, "pt", "text")
    assert validate_dataset(workspace, "c").ok
    path.write_text('{"text": "a"}\n{"txt": "b"}\n')
    errors = validate_dataset(workspace, "c").errors
    assert errors[0] == f"{path.resolve()}:2: text: missing"
    assert "sha256 differs" in errors[-1]
    with pytest.raises(LLMOpsError, match="not registered"):
        validate_dataset(workspace, "unknown")


def test_validate_of_a_path_that_is_not_json_names_the_file(workspace: Workspace, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n")
    for target in (str(notes), "docs/missing.txt"):
        with pytest.raises(LLMOpsError, match=rf"^{target}: not a \.json/\.jsonl dataset file"):
            validate_dataset(workspace, target)


def test_latest_dataset_is_the_newest_of_its_kind(workspace: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="no pt dataset is registered"):
        latest_dataset(workspace, "pt")
    publish_dataset(workspace, "old", workspace.stage_data_dir("cpt") / "old.jsonl", TEXT, "pt", "text")
    publish_dataset(workspace, "new", workspace.stage_data_dir("cpt") / "new.jsonl", TEXT[:1], "pt", "text")
    assert latest_dataset(workspace, "pt") == "new"
    with pytest.raises(LLMOpsError, match="no sft dataset"):
        latest_dataset(workspace, "sft")


def test_published_dataset_keeps_the_settings_that_made_it(workspace: Workspace) -> None:
    path = workspace.stage_data_dir("cpt") / "s.jsonl"
    publish_dataset(workspace, "s", path, TEXT, "pt", "text")
    saved = path.with_name("s.jsonl.settings.yaml")
    assert "chunk_size: 512" in saved.read_text(encoding="utf-8")
