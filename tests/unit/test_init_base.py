"""`llmops init DIR --base demo|PATH|HUB_ID`, and the fast failure of a base that cannot be reached."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from demo_cache import seed_demo_cache
from llmops.cli import main
from llmops.commands.common import console
from llmops.demo.cache import default_cache_dir
from llmops.workspace import init_workspace

QUICK_S = 20  # far below transformers' ~40 s of hub retries


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str]]:
    """Runs `llmops ARGS` through the real entry point: (exit code, output)."""
    monkeypatch.setattr(console, "width", 200)

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


Cli = Callable[..., tuple[int, str]]


def _base_model(root: Path) -> str:
    value = yaml.safe_load((root / "llmops.yaml").read_text(encoding="utf-8"))["train"]["base_model"]
    assert isinstance(value, str)
    return value


def test_default_cache_honours_llmops_cache_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("LLMOPS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "llmops"


def test_init_base_demo_reuses_the_cached_build_and_corpus_runs_offline(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> None:
    cache = seed_demo_cache(tmp_path / "cache", tiny_model_dir)
    monkeypatch.setenv("LLMOPS_CACHE", str(cache))
    config_mtime = (cache / "demo-base" / "config.json").stat().st_mtime_ns
    code, output = cli("init", str(tmp_path / "shop"), "--base", "demo")
    assert code == 0, output
    assert "reusing" in output
    assert _base_model(tmp_path / "shop") == str(cache / "demo-base")
    assert (cache / "demo-base" / "config.json").stat().st_mtime_ns == config_mtime
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "licence.md").write_text("# Licence\n\nPermission is granted to use, copy and modify this software.\n"
                                     "The software is provided as is, without warranty of any kind.\n",
                                     encoding="utf-8")
    code, output = cli("data", "corpus", str(docs), "-w", str(tmp_path / "shop"))
    assert code == 0, output
    assert "chunks 1" in output


def test_init_base_path_is_checked_to_be_a_model_folder(cli: Cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    code, output = cli("init", str(tmp_path / "a"), "--base", str(tiny_model_dir))
    assert code == 0, output
    assert _base_model(tmp_path / "a") == str(tiny_model_dir.resolve())
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    code, output = cli("init", str(tmp_path / "b"), "--base", str(empty))
    assert code == 1
    assert "config.json" in output and "--base" in output
    code, output = cli("init", str(tmp_path / "c"), "--base", str(tmp_path / "nowhere"))
    assert code == 1 and "no such folder" in output
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_init_again_with_a_base_updates_the_settings(cli: Cli, tmp_path: Path, tiny_model_dir: Path) -> None:
    init_workspace(tmp_path / "ws")
    assert _base_model(tmp_path / "ws") == "Qwen/Qwen2-1.5B"
    assert cli("init", str(tmp_path / "ws"), "--base", str(tiny_model_dir))[0] == 0
    assert _base_model(tmp_path / "ws") == str(tiny_model_dir.resolve())


def test_unreachable_hub_id_offline_fails_at_once_naming_base(cli: Cli, monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    code, output = cli("init", str(tmp_path / "shop"), "--base", "nobody/no-such-model")
    assert time.monotonic() - started < QUICK_S
    assert code == 1
    assert "--base" in output and "train.base_model" in output and "--base demo" in output


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_hub_online_fails_quickly_naming_base(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "llmops", "init", str(tmp_path / "shop"), "--base",
                           "nobody/no-such-model"], env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < QUICK_S
    assert done.returncode == 1
    assert "--base" in done.stdout and "cannot be reached" in done.stdout


def test_corpus_with_an_unreachable_default_base_fails_fast_with_the_advice(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = init_workspace(tmp_path / "shop").root
    (tmp_path / "doc.txt").write_text("Some text of the domain.\n", encoding="utf-8")
    started = time.monotonic()
    code, output = cli("data", "corpus", str(tmp_path / "doc.txt"), "-w", str(root))
    assert time.monotonic() - started < QUICK_S
    assert code == 1
    assert "Qwen/Qwen2-1.5B" in output and "--base" in output and "train.base_model" in output


def test_init_writes_set_and_takes_workspace(cli: Cli, tmp_path: Path) -> None:
    code, output = cli("init", "--workspace", str(tmp_path / "ws"), "--set", "data.chunk_size=256")
    assert code == 0, output
    settings = yaml.safe_load((tmp_path / "ws" / "llmops.yaml").read_text(encoding="utf-8"))
    assert settings["data"]["chunk_size"] == 256
    code, output = cli("init", str(tmp_path / "bad"), "--set", "data.chunk_size=-1")
    assert code == 1 and "chunk_size" in output
    assert not (tmp_path / "bad").exists()
