"""The README's operator path, run as written: its fenced block under "The operator's path (your own documents)",
command by command through the venv's `llmops`, on a licence and a recipe (not the demo shop) and the tiny base;
arena votes over HTTP between `serve` and `loop tick`; then a gate-rejected candidate retried with the next recipe.
Only `WS`'s contents (documents, small training settings) and the port are the test's own."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest
import yaml

from demo_cache import seed_demo_cache
from generic_docs import LICENCE_MD, RECIPE_MD
from llmops.models import rollouts
from llmops.serve.server import free_port
from llmops.workspace import open_workspace

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## The operator's path (your own documents)"
LLMOPS = str(Path(sys.executable).parent / "llmops")
STEPS = ["llmops init", "cd", "llmops data corpus", "llmops data self-instruct", "llmops data eval-set",
         "llmops train offline", "llmops models promote", "llmops serve", "llmops loop status", "llmops loop tick",
         "llmops rollout status"]
TYPES = ("classification", "generation", "summarization", "qa", "rewrite", "reasoning")
TINY = {"max_steps": 3, "logging_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
        "warmup_steps": 0, "cutoff_len": 64, "learning_rate": 1e-3, "save_steps": 1000}
RECIPE = {"learning_rate": 0.005}
SETTINGS: dict[str, Any] = {
    "train": {"cpt": TINY, "sft": TINY, "dpo": {**TINY, "pref_ftx": 1.0}},
    "loop": {"min_samples": 5, "days_threshold": 0, "bootstrap_samples": 200, "gate_lower_bound": 0.0,
             "retry_recipes": [RECIPE]},
    "serve": {"max_new_tokens": 8},
}
VOTES = 10


def readme_commands() -> list[str]:
    """The commands of the section's fenced bash block, comments and blank lines left out."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, f"README.md: no ```bash block under {SECTION!r}"
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.split("#", 1)[0].strip()]


class OperatorPath:
    """Runs commands as a user's shell would, in `cwd`, with `llmops` the venv's."""

    def __init__(self, cwd: Path, cache: Path) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                    "LLMOPS_CACHE": str(cache), "COLUMNS": "200"}
        self.gateway: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def run(self, command: str) -> str:
        words = shlex.split(command.replace("8000", str(self.port)))
        if words[0] == "cd":
            self.cwd = self.cwd / words[1]
            return ""
        assert words[0] == "llmops", f"README.md: {command!r} is not an llmops command"
        if words[-1] == "&":
            self._start_gateway(words[1:-1])
            return ""
        done = subprocess.run([LLMOPS, *words[1:]], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, command: str) -> Any:
        return json.loads(self.run(command))

    def _start_gateway(self, args: list[str]) -> None:
        self._log = (self.cwd / "gateway.log").open("ab")
        self.gateway = subprocess.Popen([LLMOPS, *args], cwd=self.cwd, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert self.gateway.poll() is None, (self.cwd / "gateway.log").read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.5)
        raise AssertionError("the gateway did not start within 300 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def vote(self, prompts: list[str]) -> None:
        """One arena battle per prompt and a vote for A on each, with the admin token, as a signed-in voter."""
        token = (self.cwd / ".llmops/admin_token").read_text(encoding="utf-8").strip()
        headers = {"Authorization": f"Bearer {token}"}
        for i, prompt in enumerate(prompts):
            battle = httpx.post(f"{self.url}/v1/arena/battles", headers=headers, timeout=120,
                                json={"prompt": prompt, "user": f"voter-{i}", "temperature": 1.5})
            assert battle.status_code == 200, battle.text
            voted = httpx.post(f"{self.url}/v1/arena/battles/{battle.json()['id']}/vote", headers=headers,
                               json={"vote": "a"}, timeout=60)
            assert voted.status_code == 200 and voted.json()["vote"] == "a", voted.text

    def stop(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.terminate()
            self.gateway.wait(60)
        if self._log is not None:
            self._log.close()


def _prompts(round_: int) -> list[str]:
    return [f"Explain condition {i} of the licence, round {round_}." for i in range(VOTES)]


def _after_init(path: OperatorPath, cache: Path) -> None:
    settings = yaml.safe_load((path.cwd / "WS/llmops.yaml").read_text(encoding="utf-8"))
    assert settings["train"]["base_model"] == str(cache / "demo-base")
    for section, values in SETTINGS.items():
        for key, value in values.items():
            current = settings[section].get(key)
            settings[section][key] = {**current, **value} if isinstance(value, dict) else value
    (path.cwd / "WS/llmops.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    (path.cwd / "WS/documents").mkdir(exist_ok=True)
    (path.cwd / "WS/documents/licence.md").write_text(LICENCE_MD, encoding="utf-8")
    (path.cwd / "WS/documents/recipe.md").write_text(RECIPE_MD, encoding="utf-8")


def _check_self_instruct(path: OperatorPath, output: str) -> None:
    counts = dict(re.findall(rf"\b({'|'.join(TYPES)}) (\d+)", output.split("by type:", 1)[1]))
    assert set(counts) == set(TYPES) and all(int(n) > 0 for n in counts.values()), output


def _check_eval_set(path: OperatorPath, output: str) -> None:
    kinds = {d["kind"] for d in path.json("llmops data list --json")}
    assert {"pt", "sft", "eval"} <= kinds, kinds


def _check_train(path: OperatorPath, output: str) -> None:
    version = path.json("llmops models show chat-v1.0")
    assert version["kind"] == "chat" and version["stage"] == "sft", version


def _check_promote(path: OperatorPath, output: str) -> None:
    aliases = {v["name"]: v["aliases"] for v in path.json("llmops models list --json")}
    assert "production" in aliases["chat-v1.0"], aliases


def _vote_in_the_arena(path: OperatorPath, output: str) -> None:
    path.vote(_prompts(1))
    stats = path.run("llmops data prefs stats")
    assert re.search(rf"\bvotes\W+{VOTES}\b", stats), stats


def _check_status(path: OperatorPath, output: str) -> None:
    assert "DPO trigger fires" in output, output


def _tick_event(path: OperatorPath, candidate: str) -> rollouts.Event:
    """The gate's decision on `candidate`: its canary started or its rejection, with the evaluation."""
    events = [e for e in rollouts.history(open_workspace(path.cwd)) if e.candidate == candidate]
    judged = [e for e in events if e.event in ("started", "gate_failed")]
    assert judged, [e.event for e in events]
    evaluation = judged[-1].evidence["evaluation"]
    assert evaluation["ci_low"] <= evaluation["win_rate"] <= evaluation["ci_high"], evaluation
    assert evaluation["comparisons"] > 0 and evaluation["old_model"] == "chat-v1.0", evaluation
    return judged[-1]


def _check_tick(path: OperatorPath, output: str) -> None:
    version = path.json("llmops models show chat-v1.1")
    assert (version["stage"], version["parent"]) == ("dpo", "chat-v1.0"), version
    assert "win rate" in output or "canary" in output, output
    _tick_event(path, "chat-v1.1")


def _check_rollout(path: OperatorPath, output: str) -> None:
    if _tick_event(path, "chat-v1.1").event == "started":
        assert "chat-v1.1" in output, output


CHECKS: dict[str, Callable[[OperatorPath, str], None]] = {
    "llmops data self-instruct": _check_self_instruct, "llmops data eval-set": _check_eval_set,
    "llmops train offline": _check_train, "llmops models promote": _check_promote,
    "llmops serve": _vote_in_the_arena, "llmops loop status": _check_status,
    "llmops loop tick": _check_tick, "llmops rollout status": _check_rollout,
}


def _step(command: str) -> str:
    return next(step for step in sorted(STEPS, key=len, reverse=True) if command.startswith(step))


def _rejected_candidate(path: OperatorPath) -> str:
    """A candidate the gate rejected: chat-v1.1, or (its canary rolled back) one trained on new votes."""
    if _tick_event(path, "chat-v1.1").event == "gate_failed":
        return "chat-v1.1"
    path.run("llmops rollout rollback")
    path.vote(_prompts(2))
    path.run("llmops loop tick --set loop.gate_lower_bound=1.0")
    assert _tick_event(path, "chat-v1.2").event == "gate_failed"
    return "chat-v1.2"


def _check_retry(path: OperatorPath) -> None:
    rejected = _rejected_candidate(path)
    retried = f"chat-v1.{int(rejected.rsplit('.', 1)[1]) + 1}"
    path.run("llmops loop tick --set loop.gate_lower_bound=1.0")
    events = rollouts.history(open_workspace(path.cwd))
    attempts = {e.candidate: e.evidence["attempt"] for e in events if e.event == "trained"}
    assert attempts[retried]["recipe"] == RECIPE and attempts[retried]["number"] == 2, attempts
    assert attempts[retried]["data_sha256"] == attempts[rejected]["data_sha256"], attempts
    assert path.json(f"llmops models show {retried}")["parent"] == "chat-v1.0"
    _tick_event(path, retried)


def test_the_readme_operator_path_runs_as_written(tmp_path: Path, tiny_model_dir: Path) -> None:
    commands = readme_commands()
    assert [_step(c) for c in commands] == STEPS, commands
    cache = seed_demo_cache(tmp_path / "cache", tiny_model_dir)
    path = OperatorPath(tmp_path / "home", cache)
    path.cwd.mkdir()
    try:
        for command in commands:
            output = path.run(command)
            if _step(command) == "llmops init":
                _after_init(path, cache)
            check = CHECKS.get(_step(command))
            if check is not None:
                check(path, output)
        _check_retry(path)
    finally:
        path.stop()
