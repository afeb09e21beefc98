"""Bad input to every command group ends in a short error and a non-zero exit, never a traceback or a hang.

Each case runs the real entry point (`llmops.cli.main`) in a thread with a deadline, so a command that blocks
(e.g. on a FIFO) fails the test instead of hanging the suite. Servers, training and the demo never start:
the gateway's app factory and the demo's base model builder are replaced by a function that fails the test
if it is reached.
"""

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deadline import within
from llmops.cli import main
from llmops.commands.common import console
from llmops.demo import run as demo_run
from llmops.serve import gateway
from llmops.workspace import init_workspace

DEADLINE_S = 60.0
HUGE = str(10**30)
BAD_SETTINGS = {
    "yaml_syntax": b"data: [unclosed\n",
    "yaml_list": b"- 1\n- 2\n",
    "unknown_key": b"data:\n  chunk_sise: 4\n",
    "wrong_type": b"serve:\n  port: eighty\n",
    "binary": bytes(range(256)),
    "bad_utf8": b"data:\n  tokenizer: \xc3\x28\n",
    "section_scalar": b"data: 3\n",
    "deep_yaml": b"[" * 5000,
}


@dataclass(frozen=True)
class Inputs:
    tmp: Path
    ws: str
    plain: str  # an existing folder that is not a workspace
    missing: str
    fifo: str  # a FIFO named pipe.jsonl
    folder_jsonl: str  # a folder named dir.jsonl
    binary: str
    bad_utf8: str
    empty: str
    nul: str

    def bad_ws(self, name: str) -> str:
        root = init_workspace(self.tmp / f"ws_{name}").root
        (root / "llmops.yaml").write_bytes(BAD_SETTINGS[name])
        return str(root)

    def fifo_settings(self) -> str:
        root = init_workspace(self.tmp / "ws_fifo").root
        (root / "llmops.yaml").unlink()
        os.mkfifo(root / "llmops.yaml")
        return str(root)

    def fifo_folder(self) -> str:
        folder = self.tmp / "fifos"
        folder.mkdir()
        for name in ("a.txt", "b.jsonl", "c.pdf"):
            os.mkfifo(folder / name)
        return str(folder)

    def link(self, name: str, target: str) -> str:
        (self.tmp / name).symlink_to(target)
        return str(self.tmp / name)

    def file(self, name: str, content: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(content)
        return str(path)


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    (tmp_path / "plain").mkdir()
    (tmp_path / "dir.jsonl").mkdir()
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(bytes(range(256)))
    (tmp_path / "bad_utf8.jsonl").write_bytes(b'{"text": "\xc3\x28"}\n')
    (tmp_path / "empty.jsonl").write_bytes(b"")
    ws = init_workspace(tmp_path / "ws")
    return Inputs(tmp_path, str(ws.root), str(tmp_path / "plain"), str(tmp_path / "nope.jsonl"),
                  str(tmp_path / "pipe.jsonl"), str(tmp_path / "dir.jsonl"), str(tmp_path / "bin.jsonl"),
                  str(tmp_path / "bad_utf8.jsonl"), str(tmp_path / "empty.jsonl"), str(tmp_path / "a\x00b.jsonl"))


Case = Callable[[Inputs], list[str]]

CASES: dict[str, Case] = {
    # init
    "init_on_a_file": lambda i: ["init", i.binary],
    "init_under_a_file": lambda i: ["init", f"{i.binary}/ws"],
    "init_nul_path": lambda i: ["init", i.nul],
    "init_fifo": lambda i: ["init", i.fifo],
    # workspace and settings
    "data_list_not_a_workspace": lambda i: ["data", "list", "-w", i.plain],
    "data_list_missing_workspace": lambda i: ["data", "list", "-w", i.missing],
    "data_list_nul_workspace": lambda i: ["data", "list", "-w", i.nul],
    "settings_file_is_a_fifo": lambda i: ["loop", "status", "-w", i.fifo_settings()],
    **{f"settings_file_{name}": (lambda n: lambda i: ["loop", "status", "-w", i.bad_ws(n)])(name)
       for name in BAD_SETTINGS},
    "set_without_equals": lambda i: ["loop", "status", "-w", i.ws, "--set", "loop.min_samples"],
    "set_empty_key": lambda i: ["loop", "status", "-w", i.ws, "--set", "=3"],
    "set_unknown_key": lambda i: ["loop", "status", "-w", i.ws, "--set", "loop.min_sample=3"],
    "set_unknown_section": lambda i: ["loop", "status", "-w", i.ws, "--set", "nope.x=3"],
    "set_wrong_type": lambda i: ["loop", "status", "-w", i.ws, "--set", "loop.min_samples=many"],
    "set_negative_count": lambda i: ["loop", "status", "-w", i.ws, "--set", "loop.min_samples=-5"],
    "set_bad_yaml": lambda i: ["loop", "status", "-w", i.ws, "--set", "loop.rollout_stages=[0.1"],
    "set_into_scalar": lambda i: ["loop", "status", "-w", i.ws, "--set", "loop.min_samples.x=1"],
    "set_deep_yaml": lambda i: ["loop", "status", "-w", i.ws, "--set", "loop.dpo_overrides=" + "[" * 5000],
    "set_huge_number": lambda i: ["loop", "status", "-w", i.ws, "--set", f"serve.port={HUGE}"],
    "set_nan": lambda i: ["loop", "status", "-w", i.ws, "--set", "loop.days_threshold=.nan"],
    # data
    "validate_missing_file": lambda i: ["data", "validate", i.missing, "-w", i.ws],
    "validate_folder": lambda i: ["data", "validate", i.folder_jsonl, "-w", i.ws],
    "validate_fifo": lambda i: ["data", "validate", i.fifo, "-w", i.ws],
    "validate_binary": lambda i: ["data", "validate", i.binary, "-w", i.ws],
    "validate_bad_utf8": lambda i: ["data", "validate", i.bad_utf8, "-w", i.ws],
    "validate_empty": lambda i: ["data", "validate", i.empty, "-w", i.ws],
    "validate_nul_path": lambda i: ["data", "validate", i.nul, "-w", i.ws],
    "validate_unknown_name": lambda i: ["data", "validate", "no_such_set", "-w", i.ws],
    "validate_device": lambda i: ["data", "validate", i.link("zero.jsonl", "/dev/zero"), "-w", i.ws],
    "validate_device_by_name": lambda i: ["data", "validate", "/dev/zero", "-w", i.ws],
    "show_unknown_dataset": lambda i: ["data", "show", "no_such_set", "-w", i.ws],
    "show_path_as_name": lambda i: ["data", "show", "../../etc/passwd", "-w", i.ws],
    "convert_missing": lambda i: ["data", "convert", i.missing, str(i.tmp / "out.jsonl"), "--to", "sharegpt"],
    "convert_fifo": lambda i: ["data", "convert", i.fifo, str(i.tmp / "out.jsonl"), "--to", "sharegpt"],
    "convert_unknown_format": lambda i: ["data", "convert", i.file("m.jsonl", b'{"text": "a"}\n'),
                                         str(i.tmp / "out.jsonl"), "--to", "klingon"],
    "convert_unknown_source_format": lambda i: ["data", "convert", i.file("m.jsonl", b'{"text": "a"}\n'),
                                                str(i.tmp / "out.jsonl"), "--to", "trl", "--from", "klingon"],
    "convert_to_a_folder": lambda i: ["data", "convert", i.file("c.jsonl", b'{"messages": [{"role": "user", '
                                      b'"content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'),
                                      i.plain, "--to", "sharegpt"],
    "convert_bad_json": lambda i: ["data", "convert", i.file("j.json", b'[{"text": "a"},'), str(i.tmp / "o.json"),
                                   "--to", "sharegpt"],
    "corpus_missing_path": lambda i: ["data", "corpus", i.missing, "-w", i.ws],
    "corpus_fifo": lambda i: ["data", "corpus", i.fifo, "-w", i.ws],
    "corpus_device": lambda i: ["data", "corpus", "/dev/zero", "-w", i.ws],
    "corpus_nul_path": lambda i: ["data", "corpus", i.nul, "-w", i.ws],
    "corpus_empty_folder": lambda i: ["data", "corpus", i.plain, "-w", i.ws],
    "corpus_folder_of_fifos": lambda i: ["data", "corpus", i.fifo_folder(), "-w", i.ws],
    "corpus_negative_chunk": lambda i: ["data", "corpus", i.file("d.txt", b"text"), "-w", i.ws,
                                        "--chunk-size", "-5"],
    "corpus_huge_chunk": lambda i: ["data", "corpus", i.file("d.txt", b"text"), "-w", i.ws, "--chunk-size", HUGE],
    "corpus_negative_overlap": lambda i: ["data", "corpus", i.file("d.txt", b"text"), "-w", i.ws,
                                          "--overlap", "-1"],
    "corpus_threshold_above_one": lambda i: ["data", "corpus", i.file("d.txt", b"text"), "-w", i.ws,
                                             "--threshold", "2"],
    "corpus_not_a_number": lambda i: ["data", "corpus", i.plain, "-w", i.ws, "--chunk-size", "big"],
    "corpus_unknown_tokenizer": lambda i: ["data", "corpus", i.file("d.txt", b"text"), "-w", i.ws,
                                           "--tokenizer", str(i.tmp / "no-tokenizer")],
    "self_instruct_negative_num": lambda i: ["data", "self-instruct", "-w", i.ws, "--num", "-3"],
    "self_instruct_zero_num": lambda i: ["data", "self-instruct", "-w", i.ws, "--num", "0"],
    "self_instruct_negative_retries": lambda i: ["data", "self-instruct", "-w", i.ws, "--retries", "-2"],
    "self_instruct_missing_documents": lambda i: ["data", "self-instruct", i.missing, "-w", i.ws],
    "self_instruct_closing_rate": lambda i: ["data", "self-instruct", "-w", i.ws, "--closing-rate", "3"],
    "self_instruct_llm_without_url": lambda i: ["data", "self-instruct", "-w", i.ws, "--llm"],
    "self_instruct_seed_tasks_missing": lambda i: ["data", "self-instruct", "-w", i.ws, "--llm", "--base-url",
                                                   "http://127.0.0.1:9/v1", "--model", "m", "--seed-tasks",
                                                   i.missing],
    "self_instruct_seed_tasks_binary": lambda i: ["data", "self-instruct", "-w", i.ws, "--llm", "--base-url",
                                                  "http://127.0.0.1:9/v1", "--model", "m", "--seed-tasks",
                                                  i.binary],
    "self_instruct_seed_tasks_fifo": lambda i: ["data", "self-instruct", "-w", i.ws, "--llm", "--base-url",
                                                "http://127.0.0.1:9/v1", "--model", "m", "--seed-tasks", i.fifo],
    "prefs_stats_bad_since": lambda i: ["data", "prefs", "stats", "-w", i.ws, "--since", "yesterday-ish"],
    "prefs_export_bad_since": lambda i: ["data", "prefs", "export", "-w", i.ws, "--since", "nan"],
    "prefs_stats_huge_since": lambda i: ["data", "prefs", "stats", "-w", i.ws, "--since", "1e400"],
    "data_unknown_command": lambda i: ["data", "frobnicate"],
    "data_show_unknown_option": lambda i: ["data", "show", "x", "-w", i.ws, "--bogus-option"],
    # train (config only: nothing trains)
    "train_cpt_no_dataset": lambda i: ["train", "cpt", "--config-only", "-w", i.ws],
    "train_cpt_unknown_override_key": lambda i: ["train", "cpt", "--config-only", "-w", i.ws, "--dataset", "d",
                                                 "lora_rnak=4"],
    "train_cpt_override_without_equals": lambda i: ["train", "cpt", "--config-only", "-w", i.ws, "--dataset",
                                                    "d", "max_steps"],
    "train_dpo_unknown_parent": lambda i: ["train", "dpo", "--config-only", "-w", i.ws, "--parent", "chat-v9.9"],
    "train_val_size_out_of_range": lambda i: ["train", "cpt", "--config-only", "-w", i.ws, "--val-size", "2"],
    "train_negative_patience": lambda i: ["train", "cpt", "--config-only", "-w", i.ws, "--patience", "-1"],
    "train_status_unknown_run": lambda i: ["train", "status", "no-such-run", "-w", i.ws],
    "train_logs_unknown_run": lambda i: ["train", "logs", "no-such-run", "-w", i.ws],
    "train_logs_traversal": lambda i: ["train", "logs", "../../etc", "-w", i.ws],
    "train_stop_unknown_run": lambda i: ["train", "stop", "no-such-run", "-w", i.ws],
    # models
    "models_show_unknown": lambda i: ["models", "show", "chat-v9.9", "-w", i.ws],
    "models_show_bad_name": lambda i: ["models", "show", "../x", "-w", i.ws],
    "models_register_nothing": lambda i: ["models", "register", "-w", i.ws],
    "models_register_unknown_kind": lambda i: ["models", "register", "--path", i.plain, "--kind", "robot",
                                               "-w", i.ws],
    "models_register_unknown_stage": lambda i: ["models", "register", "--path", i.plain, "--stage", "zz",
                                                "-w", i.ws],
    "models_register_bad_version": lambda i: ["models", "register", "--path", i.plain, "--version", "one",
                                              "-w", i.ws],
    "models_register_unknown_parent": lambda i: ["models", "register", "--path", i.plain, "--parent",
                                                 "chat-v7.0", "-w", i.ws],
    "models_register_fifo_path": lambda i: ["models", "register", "--path", i.fifo, "-w", i.ws],
    "models_register_file_path": lambda i: ["models", "register", "--path", i.binary, "-w", i.ws],
    "models_register_nul_path": lambda i: ["models", "register", "--path", i.nul, "-w", i.ws],
    "models_register_device_path": lambda i: ["models", "register", "--path", "/dev/null", "-w", i.ws],
    "models_promote_unknown": lambda i: ["models", "promote", "chat-v4.0", "-w", i.ws],
    "models_rollback_without_previous": lambda i: ["models", "rollback", "-w", i.ws],
    "models_export_unknown": lambda i: ["models", "export", "chat-v4.0", "--out", str(i.tmp / "x"), "-w", i.ws],
    # serve and ui: argument errors only
    "serve_port_too_big": lambda i: ["serve", "-w", i.ws, "--port", "70000"],
    "serve_negative_port": lambda i: ["serve", "-w", i.ws, "--port", "-1"],
    "serve_port_not_a_number": lambda i: ["serve", "-w", i.ws, "--port", "http"],
    "serve_not_a_workspace": lambda i: ["serve", "-w", i.plain],
    "serve_bad_set": lambda i: ["serve", "-w", i.ws, "--set", "serve.port=0"],
    "ui_port_too_big": lambda i: ["ui", "-w", i.ws, "--port", HUGE, "--no-browser"],
    "ui_unknown_setting": lambda i: ["ui", "-w", i.ws, "--set", "serve.hots=0.0.0.0", "--no-browser"],
    "ui_not_a_workspace": lambda i: ["ui", "-w", i.missing, "--no-browser"],
    # arena
    "arena_zero_rounds": lambda i: ["arena", "leaderboard", "-w", i.ws, "--rounds", "0"],
    "arena_huge_rounds": lambda i: ["arena", "leaderboard", "-w", i.ws, "--rounds", HUGE],
    "arena_not_a_workspace": lambda i: ["arena", "leaderboard", "-w", i.plain],
    # loop
    "loop_run_bad_every": lambda i: ["loop", "run", "-w", i.ws, "--every", "often"],
    "loop_run_nan_every": lambda i: ["loop", "run", "-w", i.ws, "--every", "nan"],
    "loop_run_infinite_every": lambda i: ["loop", "run", "-w", i.ws, "--every", "1e400s"],
    "loop_run_negative_every": lambda i: ["loop", "run", "-w", i.ws, "--every", "-5m"],
    "loop_run_negative_ticks": lambda i: ["loop", "run", "-w", i.ws, "--ticks", "-1"],
    "loop_run_zero_ticks": lambda i: ["loop", "run", "-w", i.ws, "--ticks", "0"],
    "loop_evaluate_unknown": lambda i: ["loop", "evaluate", "chat-v8.0", "-w", i.ws],
    "loop_tick_bad_settings": lambda i: ["loop", "tick", "-w", i.bad_ws("unknown_key")],
    # rollout
    "rollout_start_unknown": lambda i: ["rollout", "start", "chat-v5.0", "-w", i.ws],
    "rollout_promote_none_running": lambda i: ["rollout", "promote", "-w", i.ws],
    "rollout_rollback_nothing": lambda i: ["rollout", "rollback", "-w", i.ws],
    "rollout_status_bad_set": lambda i: ["rollout", "status", "-w", i.ws, "--set", "loop.rollout_stages=[2]"],
    # demo: argument errors before any model is built
    "demo_build_base_out_is_a_file": lambda i: ["demo", "build-base", "--out", i.binary],
    "demo_build_base_zero_steps": lambda i: ["demo", "build-base", "--out", str(i.tmp / "b"), "--steps", "0"],
    "demo_build_base_full_folder": lambda i: ["demo", "build-base", "--out", str(i.tmp)],
    "demo_build_base_no_out": lambda i: ["demo", "build-base"],
    "demo_too_few_prompts": lambda i: ["demo", "--prompts", "1", "-w", str(i.tmp / "d")],
    "demo_existing_folder": lambda i: ["demo", "-w", str(i.tmp), "--cache-dir", str(i.tmp / "cache")],
    "unknown_command": lambda i: ["frobnicate"],
}


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], inputs: Inputs,
            args: list[str]) -> tuple[BaseException | None, str]:
    """Run `llmops ARGS` with a deadline; returns what it raised (None: nothing) and all it printed."""
    monkeypatch.setattr(sys, "argv", ["llmops", *args])
    monkeypatch.setattr(console, "width", 200)
    try:
        within(DEADLINE_S, main, [Path(inputs.fifo)])
    except BaseException as exc:
        raised: BaseException | None = exc
    else:
        raised = None
    out = capsys.readouterr()
    return raised, out.out + out.err


def _must_not_start(*args: object, **kwargs: object) -> None:
    raise AssertionError("a bad input started a server or the demo")


def test_there_are_at_least_71_cases() -> None:
    assert len(CASES) >= 71


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_a_clear_error(name: str, inputs: Inputs, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(gateway, "create_app", _must_not_start)  # `serve` and `ui` import it when they run
    monkeypatch.setattr(demo_run, "ensure_base_model", _must_not_start)
    raised, output = run_cli(monkeypatch, capsys, inputs, CASES[name](inputs))
    assert isinstance(raised, SystemExit), f"{name}: raised {raised!r}\n{output}"
    assert raised.code not in (0, None), f"{name}: exit code {raised.code}\n{output}"
    assert "Traceback" not in output
    if raised.code == 2:  # a usage error, shown by Typer with the command's usage line
        assert "Usage:" in output and "Error" in output, output
    else:  # an LLMOpsError, shown by `main` as one `error: …` message
        assert raised.code == 1 and f"\n{output.lstrip()}".count("\nerror: ") == 1, output
    assert len(" ".join(output.split())) < 1000, f"{name}: the message is not short: {output!r}"
