"""CPU serving with llama.cpp: a merged chat version and its DPO adapter exported with `llmops models export --gguf`
(llama.cpp's real converters), each served by `llama-server` (the line the export prints) and registered as a
version's upstream; through the gateway their greedy answers equal the embedded engine's answers of the same
weights. Skipped unless a llama.cpp source tree and `llama-server` are there (see benchmarks/_llama_cpp.py)."""

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from llmops.cli import app as cli
from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer, free_port
from llmops.train import gguf
from llmops.workspace import Workspace, init_workspace

START_TIMEOUT_S = 60
PROMPTS = ["How do I charge the Bluetooth earbuds?", "Can I return the desk lamp?", "What does the power bank cost?"]


def _peer_missing() -> str:
    try:
        gguf.llama_cpp_source("")
        binary = gguf.llama_server_binary()
    except LLMOpsError as exc:
        return str(exc)
    return "" if binary else "no llama-server: set LLMOPS_LLAMA_SERVER or build it with benchmarks/_llama_cpp.py"


MISSING = _peer_missing()
pytestmark = [pytest.mark.integration, pytest.mark.skipif(bool(MISSING), reason=f"llama.cpp peer: {MISSING}")]


@dataclass
class Served:
    gateway: str
    pairs: dict[str, str]  # embedded version → the version served by llama-server from its GGUF


def random_lora(model: Any, seed: int, alpha: int) -> Any:
    torch.manual_seed(seed)
    config = LoraConfig(r=8, lora_alpha=alpha, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    return get_peft_model(model, config)


def chat_and_adapter(base: Path, root: Path) -> tuple[Path, Path]:
    """A 'chat' model (the tiny base with a random LoRA merged in: it answers in words, not stray bytes, under the
    chat template) and a random LoRA on it standing in for a DPO adapter."""
    chat = root / "chat-v1.0"
    shutil.copytree(base, chat)
    random_lora(AutoModelForCausalLM.from_pretrained(base), seed=2, alpha=32).merge_and_unload().save_pretrained(chat)
    adapter = root / "dpo-v1.1"
    random_lora(AutoModelForCausalLM.from_pretrained(chat), seed=1, alpha=8).save_pretrained(adapter)
    return chat, adapter


def llama_server(workspace: Workspace, model: str, adapter: str | None, key: str, log: Path) -> tuple[str, Any]:
    """`llama-server` on the exported GGUF files, started with the line the export printed (on a free port)."""
    port = free_port()
    binary = str(gguf.llama_server_binary())
    command = gguf.llama_server_command(binary, gguf.gguf_path(workspace, model), port=port,
                                        adapter=gguf.gguf_path(workspace, adapter) if adapter else None)
    with log.open("ab") as out:
        process = subprocess.Popen([*command, "-t", "1", "-c", "2048", "--api-key", key], stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url, process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"llama-server did not start: {log.read_text(errors='replace')[-3000:]}")


def export(workspace: Workspace, name: str) -> str:
    result = CliRunner().invoke(cli, ["models", "export", name, "--gguf", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    assert gguf.gguf_path(workspace, name).is_file()
    return result.output


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("gguf")
    chat, adapter = chat_and_adapter(tiny_model_dir, root)
    workspace = init_workspace(root / "ws")
    merged = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=str(chat),
                                       path=str(chat), merged=True)
    dpo = registry.register_version(workspace, kind="chat", stage="dpo", parent=merged.name, base_model=str(chat),
                                    path=str(adapter), merged=False)
    assert "labelled gpt-2" in export(workspace, merged.name)  # the tiny tokenizer isolates Han characters
    assert "--lora" in export(workspace, dpo.name)
    key = secrets.token_hex(8)
    processes = []
    try:
        pairs = {}
        for version, model, lora in ((merged, merged.name, None), (dpo, merged.name, dpo.name)):
            url, process = llama_server(workspace, model, lora, key, root / f"{version.name}.log")
            processes.append(process)
            upstream = registry.register_version(workspace, kind="chat", stage=version.stage, parent=version.name,
                                                 base_model=version.base_model, path=version.path,
                                                 merged=version.merged, upstream_url=f"{url}/v1")
            pairs[version.name] = upstream.name
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(workspace.settings.serve.upstream_api_key_env, key)
            with BackgroundServer(create_app(workspace)) as server:
                yield Served(server.url, pairs)
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)


def answer(served: Served, model: str, prompt: str) -> dict[str, Any]:
    """The gateway's greedy reply, with the serving default's repetition penalty (which the gateway sends to
    llama-server over the whole context, as the engine applies it)."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 24}
    response = httpx.post(f"{served.gateway}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == model
    return dict(response.json())


def streamed(served: Served, model: str, prompt: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 24,
            "stream": True}
    response = httpx.post(f"{served.gateway}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    events = [json.loads(line[5:]) for line in response.text.splitlines()
              if line.startswith("data:") and line != "data: [DONE]"]
    assert all("error" not in event for event in events), events
    return "".join(choice["delta"].get("content", "") for event in events for choice in event["choices"])


@pytest.mark.parametrize("embedded", ["chat-v1.0", "chat-v1.1"])
def test_llama_server_answers_as_the_embedded_engine(served: Served, embedded: str) -> None:
    for prompt in PROMPTS:
        own, peer = answer(served, embedded, prompt), answer(served, served.pairs[embedded], prompt)
        assert peer["choices"][0]["message"]["content"] == own["choices"][0]["message"]["content"], prompt
        assert peer["usage"]["prompt_tokens"] == own["usage"]["prompt_tokens"]  # same tokens, same chat template


def test_the_adapter_is_applied(served: Served) -> None:
    base = [answer(served, served.pairs["chat-v1.0"], p)["choices"][0]["message"]["content"] for p in PROMPTS]
    tuned = [answer(served, served.pairs["chat-v1.1"], p)["choices"][0]["message"]["content"] for p in PROMPTS]
    assert base != tuned


def test_streams_and_completions_take_turns_on_one_upstream(served: Served) -> None:
    """llama-server closes a stream's connection without saying so; the gateway's next request to it must not
    fail on that closed connection."""
    model = served.pairs["chat-v1.0"]
    for prompt in PROMPTS * 2:
        assert streamed(served, model, prompt) == answer(served, model, prompt)["choices"][0]["message"]["content"]
