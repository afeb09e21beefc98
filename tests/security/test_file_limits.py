"""Files a user names are read only when they are regular files under the size limit (`data.max_file_bytes`):
FIFOs, devices and folders are refused at once, never opened, so no reader (nor the UI's Validate) can block."""

import os
from pathlib import Path

import pytest

from deadline import within
from llmops import fileio
from llmops.data.documents import load_documents
from llmops.data.formats import read_records, validate_file
from llmops.data.registry import file_sha256, publish_dataset, register_dataset, validate_dataset
from llmops.demo.preset import load_seed_tasks
from llmops.errors import LLMOpsError
from llmops.loop.evaluate import load_test_set
from llmops.settings import DataSettings, read_settings_file
from llmops.train.configs import read_config
from llmops.workspace import Workspace, open_workspace

DEADLINE_S = 30.0
ROW = b'{"text": "Nimbus H2 costs 309 yuan."}\n'


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "x.jsonl"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("reader", [
    validate_file, read_records, file_sha256, read_settings_file, read_config, load_seed_tasks, load_test_set,
    fileio.read_text_file,
], ids=lambda reader: reader.__name__)
def test_a_fifo_named_jsonl_is_refused_at_once(fifo: Path, reader: object) -> None:
    assert callable(reader)
    with pytest.raises(LLMOpsError, match=r"x\.jsonl: is a FIFO \(named pipe\), not a regular"):
        within(DEADLINE_S, lambda: reader(fifo), [fifo])


def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_on_the_open_file(
        fifo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileio, "check_regular_file", lambda *args: None)
    with pytest.raises(LLMOpsError, match="FIFO"):
        within(DEADLINE_S, lambda: fileio.read_file_bytes(fifo), [fifo])


def test_a_device_is_refused_even_behind_a_symlink_named_jsonl(tmp_path: Path) -> None:
    link = tmp_path / "zero.jsonl"
    link.symlink_to("/dev/zero")
    with pytest.raises(LLMOpsError, match=r"zero\.jsonl: is a character device"):
        within(DEADLINE_S, lambda: validate_file(link))
    with pytest.raises(LLMOpsError, match="character device"):
        within(DEADLINE_S, lambda: fileio.read_file_bytes(Path("/dev/zero")))


@pytest.mark.parametrize("path, problem", [
    ("folder.jsonl", "is a folder, not a regular file"),
    ("missing.jsonl", "no such file"),
    ("nul\x00.jsonl", "not a usable file path"),
])
def test_other_paths_that_are_not_files_name_the_problem(tmp_path: Path, path: str, problem: str) -> None:
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(LLMOpsError, match=problem):
        fileio.check_regular_file(tmp_path / path)


def test_files_over_the_workspace_limit_are_refused(workspace: Workspace) -> None:
    limited = open_workspace(workspace.root, ["data.max_file_bytes=1024"])
    big = workspace.stage_data_dir("cpt") / "big.jsonl"
    big.write_bytes(ROW * 100)
    over = rf"big\.jsonl: {big.stat().st_size:,} bytes is over the limit of 1,024 bytes \(setting data.max_file_bytes\)"
    with pytest.raises(LLMOpsError, match=over):
        validate_dataset(limited, str(big))
    with pytest.raises(LLMOpsError, match=over):
        register_dataset(limited, "big", big, "pt", "text")
    assert validate_dataset(workspace, str(big)).ok  # the default limit (256 MiB) takes it
    skipped = load_documents([big], max_bytes=1024).skipped
    assert len(skipped) == 1 and "over the limit" in skipped[0]


def test_the_limit_is_a_documented_setting() -> None:
    field = DataSettings.model_fields["max_file_bytes"]
    assert DataSettings().max_file_bytes == fileio.MAX_FILE_BYTES == 256 * 1024 * 1024
    assert field.description and "FIFO" in field.description
    with pytest.raises(ValueError, match="max_file_bytes"):
        DataSettings(max_file_bytes=10)


def test_a_folder_with_special_files_is_walked_without_blocking(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    os.mkfifo(folder / "pipe.txt")
    os.mkfifo(folder / "sub" / "pipe.jsonl")
    (folder / "zero.md").symlink_to("/dev/zero")
    (folder / "good.txt").write_text("Returns within 7 days.", encoding="utf-8")
    fifos = [folder / "pipe.txt", folder / "sub" / "pipe.jsonl"]
    result = within(DEADLINE_S, lambda: load_documents([folder]), fifos)
    assert [d.source for d in result.documents] == [str(folder / "good.txt")]
    assert sorted(result.skipped) == sorted([
        f"{folder / 'pipe.txt'}: is a FIFO (named pipe), not a regular file",
        f"{folder / 'sub' / 'pipe.jsonl'}: is a FIFO (named pipe), not a regular file",
        f"{folder / 'zero.md'}: is a character device, not a regular file",
    ])


def test_the_ui_validate_of_a_dataset_whose_file_became_a_fifo_answers_at_once(workspace: Workspace) -> None:
    from llmops.ui.data_tab import validate

    path = workspace.stage_data_dir("cpt") / "shop.jsonl"
    publish_dataset(workspace, "shop", path, [{"text": "Nimbus H2 costs 309 yuan."}], "pt", "text")
    assert validate(workspace, "shop").startswith("✅")
    path.unlink()
    os.mkfifo(path)
    message = within(DEADLINE_S, lambda: validate(workspace, "shop"), [path])
    assert message.startswith("❌") and "is a FIFO (named pipe)" in message and str(path) in message
