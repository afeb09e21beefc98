from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.errors import LLMOpsError
from llmops.settings import load_settings
from llmops.workspace import init_workspace, open_workspace


def _tree(root: Path) -> list[tuple[str, bytes]]:
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else b"") for p in root.rglob("*"))


def test_init_twice_leaves_the_same_tree(tmp_path: Path) -> None:
    root = tmp_path / "x"
    init_workspace(root)
    first = _tree(root)
    init_workspace(root)
    assert _tree(root) == first
    for folder in ("data/llmops/cpt", "data/llmops/sft", "data/llmops/dpo", "checkpoints/cpt",
                   "checkpoints/sft", "checkpoints/dpo", "configs/llmops", "documents"):
        assert (root / folder).is_dir()
    assert (root / "data/llmops/dataset_info.json").read_text().strip() == "{}"
    assert (root / "llmops.db").is_file()


def test_cli_init_and_help(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    help_text = runner.invoke(app, ["--help"]).output
    for group in ("data", "train", "models", "arena", "loop", "rollout", "demo"):
        assert group in help_text


def test_open_uninitialised_workspace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LLMOpsError, match="not an llmops workspace"):
        open_workspace(tmp_path)


def test_settings_reject_unknown_keys_by_name(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("serve:\n  port: 9000\n  bogus: 1\n")
    with pytest.raises(LLMOpsError, match=r"s\.yaml: serve\.bogus: unknown key"):
        load_settings(path)


def test_settings_overrides_and_types(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("serve:\n  port: 9000\n")
    settings = load_settings(path, ["loop.min_samples=5", "loop.rollout_stages=[0.1, 1.0]"])
    assert settings.serve.port == 9000
    assert settings.loop.min_samples == 5
    assert settings.loop.traffic_shares == [0.1, 1.0]
    with pytest.raises(LLMOpsError, match=r"loop\.min_samples"):
        load_settings(path, ["loop.min_samples=many"])
    with pytest.raises(LLMOpsError, match=r"^--set 'nope\.x=1': nope: unknown key$"):
        load_settings(path, ["nope.x=1"])


def test_settings_errors_name_the_override_or_the_file_they_come_from(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("serve:\n  bogus: 1\n")
    with pytest.raises(LLMOpsError) as caught:
        load_settings(path, ["data.nosuch=1", "loop.min_samples=many", "serve.port=9000"])
    assert sorted(str(caught.value).splitlines()) == sorted([
        "--set 'data.nosuch=1': data.nosuch: unknown key",
        "--set 'loop.min_samples=many': loop.min_samples: Input should be a valid integer, unable to parse string "
        "as an integer",
        f"{path}: serve.bogus: unknown key"])


def test_atomic_writes_replace_whole_files_readable_by_others(tmp_path: Path) -> None:
    from llmops.fileio import write_jsonl_atomic, write_text_atomic

    target = tmp_path / "sub" / "a.jsonl"
    assert write_jsonl_atomic(target, [{"x": 1}, {"y": "二"}]) == 2
    assert target.read_text(encoding="utf-8") == '{"x": 1}\n{"y": "二"}\n'
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["a.jsonl"]
