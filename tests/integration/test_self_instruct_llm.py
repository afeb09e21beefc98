"""LLM-mode Self-Instruct against a real OpenAI-compatible HTTP server on 127.0.0.1 (scripted answers)."""

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from llmops.data.self_instruct import SelfInstructGenerator, generate_sft_dataset
from llmops.data.self_instruct_llm import LLMEndpoint, Task
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace

pytestmark = pytest.mark.integration

SEEDS = [
    Task("判断这条评论是好评还是差评", "物流很快，质量不错", "好评", True),
    Task("Summarise this product description in one sentence.", "The Nimbus H2 ...", "Nimbus H2: ...", False),
    Task("How much does the Keystroke K8 cost?", "", "The Keystroke K8 costs ¥459.", False),
]
BOOTSTRAP = [
    # kept / too similar to a seed / blocked keyword / kept (classification) / too short
    "Write a thank-you note to a customer who left a five-star review.\n"
    "10. Summarise this product description in one short sentence.\n"
    "11. Draw a picture of the Tundra T6 tent.\n"
    "12. 将下面的客户咨询归入物流或退货类别\n"
    "13. Hi",
    # kept / near-duplicate of the first kept one / kept
    "Explain how to pair the Nimbus H2 with a phone.\n"
    "10. Write a thank-you note to a customer who left a five star review!\n"
    "11. List three things to check before returning an item.",
]


@dataclass
class ScriptedModel:
    """Answers chat completions from a script; the first request fails with 500 to exercise retries."""

    prompts: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=lambda: list(BOOTSTRAP))
    failures_left: int = 1
    delay_first_s: float = 0.0

    def answer(self, prompt: str) -> str:
        if prompt.startswith("Come up with a series of tasks"):
            return self.bootstrap.pop(0) if self.bootstrap else "Hi"
        if prompt.startswith("Can the following task"):
            return "Yes" if "类别" in prompt else "No"
        if prompt.startswith("Given the classification task"):
            return "Class label: 物流\nInput: 我的包裹三天了还没到\nClass label: 退货\nInput: 不想要了怎么退"
        if "pair the Nimbus" in prompt:
            return "Sorry, I cannot help with that."  # no Output: → rejected instance
        return "Input: a five-star review of the Aurora S5\nOutput: Thank you so much for your kind review!"


def make_app(model: ScriptedModel) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        if model.delay_first_s:
            delay, model.delay_first_s = model.delay_first_s, 0.0
            await asyncio.sleep(delay)  # longer than the client's timeout: the client retries
        if model.failures_left:
            model.failures_left -= 1
            return JSONResponse({"error": {"message": "warming up"}}, status_code=500)
        prompt = body["messages"][-1]["content"]
        model.prompts.append(prompt)
        message = {"role": "assistant", "content": model.answer(prompt)}
        return JSONResponse({"id": "c1", "object": "chat.completion", "created": int(time.time()),
                             "model": body["model"], "choices": [{"index": 0, "message": message,
                                                                   "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    return app


@pytest.fixture
def server() -> Iterator[tuple[str, ScriptedModel]]:
    model = ScriptedModel()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(make_app(model), log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", model
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_bootstrap_filters_and_instances(server: tuple[str, ScriptedModel]) -> None:
    url, model = server
    generator = SelfInstructGenerator(seed_tasks=SEEDS, endpoint=LLMEndpoint(url, "scripted", timeout_s=10),
                                      closing_rate=0.0)
    data = generator.generate_instructions(3, use_mock=False)
    users = [r["messages"][-2]["content"] for r in data]
    assert users == [
        "Write a thank-you note to a customer who left a five-star review.\n\na five-star review of the Aurora S5",
        "将下面的客户咨询归入物流或退货类别\n\n我的包裹三天了还没到",
        "List three things to check before returning an item.\n\na five-star review of the Aurora S5",
    ]
    assert data[1]["messages"][-1]["content"] == "物流"  # output-first: the label is the answer
    stats = generator.stats.llm
    assert stats is not None
    assert (stats.candidates, stats.rejected_filter, stats.rejected_similar, stats.rejected_instance) == (8, 2, 2, 1)
    shown = model.prompts[0]
    assert all(seed.instruction in shown for seed in SEEDS)  # in-context examples from the seeds
    assert any(p.startswith("Given the classification task") for p in model.prompts)


def test_generate_sft_dataset_in_llm_mode(server: tuple[str, ScriptedModel], workspace: Workspace,
                                          tmp_path: Any) -> None:
    url, _ = server
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"s{i}", "task_type": "classification" if t.is_classification
                                         else "qa", "instruction": t.instruction, "input": t.input,
                                         "output": t.output, "is_classification": t.is_classification}) + "\n"
                             for i, t in enumerate(SEEDS)))
    report = generate_sft_dataset(workspace, 2, use_mock=False, seed_tasks=seeds,
                                  endpoint=LLMEndpoint(url, "scripted", timeout_s=10))
    assert report.dataset.rows == 2 and report.dataset.format == "messages"


def test_unreachable_endpoint_is_a_clear_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    generator = SelfInstructGenerator(seed_tasks=SEEDS, endpoint=LLMEndpoint(
        f"http://127.0.0.1:{port}/v1", "m", timeout_s=2, max_retries=1))
    with pytest.raises(LLMOpsError, match=f"127.0.0.1:{port}"):
        generator.generate_instructions(1, use_mock=False)


def test_a_request_that_times_out_is_retried(server: tuple[str, ScriptedModel]) -> None:
    url, model = server
    model.failures_left, model.delay_first_s = 0, 3.0
    generator = SelfInstructGenerator(seed_tasks=SEEDS, endpoint=LLMEndpoint(url, "scripted", timeout_s=1))
    assert len(generator.generate_instructions(1, use_mock=False)) == 1
    assert generator.stats.llm is not None and generator.stats.llm.accepted == 1
