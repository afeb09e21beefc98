"""`llmops demo --set`: overrides go on top of the demo's own settings, and a bad one is refused before any work."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli import app
from llmops.demo.run import DemoConfig, demo_settings


def test_overrides_go_on_top_of_the_demo_settings(tmp_path: Path) -> None:
    config = DemoConfig(workspace=tmp_path / "ws", cache_dir=tmp_path / "cache",
                        overrides=("loop.min_samples=7", "train.dpo.num_train_epochs=2"))
    settings = demo_settings(tmp_path / "base", config)
    assert settings.loop.min_samples == 7 and settings.train.dpo.num_train_epochs == 2
    assert settings.auth.open_arena and settings.train.sft.finetuning_type == "full"


def test_a_bad_override_is_refused_before_the_base_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_: object) -> None:
        raise AssertionError("the base model was built despite a bad --set")

    monkeypatch.setattr("llmops.demo.run.ensure_base_model", never)
    result = CliRunner().invoke(app, ["demo", "-w", str(tmp_path / "ws"), "--cache-dir", str(tmp_path / "cache"),
                                      "--set", "loop.min_sampels=7"])
    assert result.exit_code != 0
    assert "loop.min_sampels" in str(result.exception) + result.output
    assert not (tmp_path / "ws").exists()
