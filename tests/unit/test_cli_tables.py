"""CLI tables for people at 80 columns (whole names, rounded numbers), `--json` on every list command, `--set`
everywhere, and a light `import llmops.cli`."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from llmops.cli import main
from llmops.commands.common import console
from llmops.data.registry import publish_dataset
from llmops.models import registry
from llmops.workspace import Workspace

HEAVY = ("torch", "transformers", "gradio", "openai", "datasketch", "scipy", "matplotlib")
LONG_DATASET = "domain_corpus_20261201_083000"
LOSS = 1.0384005943934123
Cli = Callable[..., tuple[int, str]]


@pytest.fixture
def cli80(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Runs `llmops ARGS` through the real entry point on an 80-column terminal: (exit code, output)."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(console, "width", 80)

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["llmops", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


def _fill(workspace: Workspace) -> None:
    datasets = [{"name": LONG_DATASET, "sha256": "ab" * 32}, {"name": "shop_sft_20261201_083000"}]
    v10 = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="/base",
                                    path="/m/sft", merged=True, metrics={"final_loss": LOSS}, datasets=datasets)
    registry.register_version(workspace, kind="chat", stage="dpo", parent=v10.name, base_model="/m/sft",
                              path="/m/dpo", merged=False, metrics={"final_loss": 0.5}, datasets=datasets)
    rows = [{"text": f"row {i} of the domain corpus"} for i in range(1234)]
    publish_dataset(workspace, LONG_DATASET, workspace.stage_data_dir("pt") / f"{LONG_DATASET}.jsonl", rows,
                    "pt", "text")


def test_models_list_at_80_columns_shows_whole_names_and_rounded_losses(cli80: Cli, workspace: Workspace) -> None:
    _fill(workspace)
    code, output = cli80("models", "list", "-w", str(workspace.root))
    assert code == 0, output
    assert max(len(line) for line in output.splitlines()) <= 80
    for name in ("chat-v1.0", "chat-v1.1"):
        assert name in output
    assert "1.038" in output and "1.0384005" not in output
    code, wide = cli80("models", "list", "--wide", "-w", str(workspace.root))
    assert code == 0 and "chat-v1.1" in wide


def test_data_list_at_80_columns_shows_whole_names_and_counts(cli80: Cli, workspace: Workspace) -> None:
    _fill(workspace)
    code, output = cli80("data", "list", "-w", str(workspace.root))
    assert code == 0, output
    assert max(len(line) for line in output.splitlines()) <= 80
    assert LONG_DATASET in output and "1,234" in output
    code, wide = cli80("data", "list", "--wide", "-w", str(workspace.root))
    assert code == 0, wide
    assert f"pt/{LONG_DATASET}.jsonl" in wide and "1,234" in wide


@pytest.mark.parametrize("command", [["models", "list"], ["data", "list"], ["train", "status"], ["auth", "list"],
                                     ["arena", "leaderboard"]])
def test_every_list_command_prints_json(cli80: Cli, workspace: Workspace, command: list[str]) -> None:
    _fill(workspace)
    code, output = cli80(*command, "--json", "-w", str(workspace.root))
    assert code == 0, output
    parsed = json.loads(output)
    assert isinstance(parsed, list | dict)
    if command == ["models", "list"]:
        assert [v["name"] for v in parsed] == ["chat-v1.0", "chat-v1.1"]
        assert parsed[0]["metrics"]["final_loss"] == LOSS
    if command == ["data", "list"]:
        assert parsed[0]["name"] == LONG_DATASET and parsed[0]["rows"] == 1234


def test_rollout_history_json_is_one_object_a_line(cli80: Cli, workspace: Workspace) -> None:
    _fill(workspace)
    assert cli80("models", "promote", "chat-v1.0", "-w", str(workspace.root))[0] == 0
    code, output = cli80("rollout", "history", "--json", "-w", str(workspace.root))
    assert code == 0, output
    events = [json.loads(line) for line in output.splitlines()]
    assert events and events[-1]["event"]


def test_data_preset_takes_set(cli80: Cli, workspace: Workspace) -> None:
    code, output = cli80("data", "preset", "--set", "data.chunk_size=256", "-w", str(workspace.root))
    assert code == 0, output
    assert any((workspace.documents_dir / "preset").iterdir())
    code, output = cli80("data", "preset", "--set", "data.chunk_size=-1", "-w", str(workspace.root))
    assert code == 1 and "chunk_size" in output


def test_importing_the_cli_loads_no_heavy_library() -> None:
    probe = f"import sys, llmops.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_help_lists_the_commands_without_heavy_imports(tmp_path: Path) -> None:
    probe = ("import sys\nfrom llmops.cli import main\nsys.argv = ['llmops', 'data', '--help']\ntry:\n    main()\n"
             f"except SystemExit:\n    pass\nprint([m for m in {HEAVY!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "corpus" in done.stdout and done.stdout.strip().endswith("[]"), done.stdout
