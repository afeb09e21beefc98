"""Batch poisoning (issue 12, item 4): a request's sampling parameters cannot fail other requests or count against
the version's error rate.

Out-of-range or non-finite parameters are refused with a 4xx naming the field (the request model, `Sampling`, and
the engine for `top_k` over the vocabulary); a row that still cannot be decoded fails alone while the rest of its
batch completes; refused requests are not requests of the version (`version_metrics` sees no error) but count in
`llmops_rejected_requests`, and an upstream's 400 is the client's 400 too.
"""

import asyncio
import json
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from pydantic import ValidationError
from transformers import AutoConfig

from llmops.errors import LLMOpsError
from llmops.inference.engine import GenerationRequest, InferenceModel
from llmops.inference.sampling import FAILED, RowSampling, next_tokens
from llmops.inference.types import ClientError, Completion, Sampling
from llmops.models import registry
from llmops.models.metrics import version_metrics
from llmops.serve.api_arena import BattleRequest
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer
from llmops.workspace import Workspace, init_workspace

PROMPTS = ["How do I charge the Bluetooth earbuds?", "蓝牙耳机怎么充电？", "Can I return the desk lamp?",
           "保温杯多少钱？", "What does the power bank cost?", "机械键盘支持退货吗？"]
# (field, raw JSON of its value): values JSON can carry, and Python's parser reads NaN/Infinity/1e400 as floats
POISONS = [("repetition_penalty", "1e-300"), ("repetition_penalty", "0"), ("repetition_penalty", "11"),
           ("top_k", str(10**20)), ("top_k", "-1"), ("temperature", "NaN"), ("temperature", "1e400"),
           ("temperature", "2.5"), ("top_p", "Infinity"), ("top_p", "0"), ("repetition_penalty", "-Infinity"),
           ("max_tokens", "0")]


def bypassed(sampling: Sampling, **values: Any) -> Sampling:
    """`sampling` with `values` set past its validation, as a careless library caller could."""
    for name, value in values.items():
        object.__setattr__(sampling, name, value)
    return sampling


def chat_body(prompt: str, **fields: Any) -> dict[str, Any]:
    return {"model": "production", "messages": [{"role": "user", "content": prompt}], "max_tokens": 16, **fields}


def raw_poison(field: str, raw: str) -> bytes:
    text = json.dumps(chat_body(PROMPTS[0]))
    return (text[:-1] + f', "{field}": {raw}}}').encode()


def test_a_row_with_broken_logits_or_sampling_fails_alone() -> None:
    torch.manual_seed(0)
    logits = torch.tensor([[2.0, 1.9, -1.0, 0.5]] * 7)
    logits[1, 2] = float("nan")
    logits[2, 3] = float("inf")
    logits[3] = float("-inf")
    seen = torch.zeros(7, 4, dtype=torch.bool)
    seen[6, 0] = True  # its logit over a penalty of 1e-300 (0 in float32) is +inf
    fine = Sampling(temperature=0, repetition_penalty=1.0)
    sampled = Sampling(temperature=1.0, top_k=2, repetition_penalty=1.0)
    rows = RowSampling.of([fine, fine, sampled, sampled, sampled,
                           bypassed(Sampling(temperature=1.0), temperature=float("nan")),
                           bypassed(Sampling(temperature=1.0), repetition_penalty=1e-300)])
    for _ in range(20):
        tokens = next_tokens(logits, seen, rows).tolist()
        assert tokens[0] == 0 and tokens[4] in (0, 1)
        assert tokens[1:4] == [FAILED] * 3 and tokens[5:] == [FAILED] * 2
    greedy_only = RowSampling.of([fine, fine])
    assert next_tokens(logits[:2], seen[:2], greedy_only).tolist() == [0, FAILED]


def test_out_of_range_sampling_is_refused_naming_the_field() -> None:
    for field, raw in POISONS:
        with pytest.raises(ValidationError, match=field):
            BattleRequest.model_validate_json(f'{{"prompt": "hi", "{field}": {raw}}}')
        value = json.loads(raw)
        with pytest.raises(ClientError, match=f"^{field}: "):
            Sampling(**{field: value})


def _submit(engine: InferenceModel, prompt: str, sampling: Sampling) -> "Future[Completion]":
    return engine.submit(GenerationRequest("m", engine.render_chat("m", [{"role": "user", "content": prompt}]),
                                           sampling))


@pytest.mark.integration
def test_a_failing_row_inside_a_running_batch_leaves_the_others_complete(tiny_model_dir: Path) -> None:
    engine = InferenceModel(max_batch_size=16, batch_wait_ms=50)
    engine.load_model("m", str(tiny_model_dir))
    greedy = Sampling(max_tokens=24, temperature=0)
    expected = [_submit(engine, prompt, greedy).result().text for prompt in PROMPTS]
    normal = [_submit(engine, prompt, greedy) for prompt in PROMPTS]
    poisoned = [_submit(engine, PROMPTS[0], bypassed(Sampling(max_tokens=24), temperature=float("nan"))),
                _submit(engine, PROMPTS[1], bypassed(Sampling(max_tokens=24, temperature=0),
                                                     repetition_penalty=float("nan")))]
    unjoinable = _submit(engine, PROMPTS[2], bypassed(Sampling(max_tokens=24), repetition_penalty="1.1"))
    assert [future.result(timeout=120).text for future in normal] == expected
    for future in poisoned:
        with pytest.raises(LLMOpsError, match="not finite"):
            future.result(timeout=120)
    with pytest.raises((TypeError, ValueError)):  # its prompt pass failed: it alone, though others joined with it
        unjoinable.result(timeout=120)
    vocab = AutoConfig.from_pretrained(tiny_model_dir).vocab_size
    with pytest.raises(ClientError, match="top_k"):
        engine.generate("m", PROMPTS[0], max_length=4, top_k=vocab + 1)
    assert engine.generate("m", PROMPTS[0], max_length=4, temperature=0, top_k=vocab)
    engine.close()


def _register(workspace: Workspace, base: Path, upstream_url: str = "") -> str:
    version = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=str(base),
                                        path=str(base), merged=True, upstream_url=upstream_url)
    registry.set_alias(workspace, "production", version.name)
    return version.name


@pytest.mark.integration
def test_poison_requests_get_4xx_and_six_concurrent_users_are_served(workspace: Workspace,
                                                                      tiny_model_dir: Path) -> None:
    name = _register(workspace, tiny_model_dir)
    engine = InferenceModel(max_batch_size=32, batch_wait_ms=50)
    vocab = AutoConfig.from_pretrained(tiny_model_dir).vocab_size
    app = create_app(workspace, engine=engine)

    async def burst() -> tuple[list[httpx.Response], list[httpx.Response], list[httpx.Response]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=120) as client:
                await client.post("/v1/chat/completions", json=chat_body("hi", max_tokens=1))  # loads the model
                normal = [client.post("/v1/chat/completions", json=chat_body(p, temperature=t))
                          for p, t in zip(PROMPTS, [0, 0, 0, 1.0, 1.0, 1.0], strict=True)]
                raw = [client.post("/v1/chat/completions", content=raw_poison(field, value),
                                   headers={"content-type": "application/json"}) for field, value in POISONS]
                too_wide = [client.post("/v1/chat/completions", json=chat_body(PROMPTS[0], top_k=vocab + 1,
                                                                              stream=stream))
                            for stream in (False, True)]
                answers = await asyncio.gather(*normal, *raw, *too_wide)
                return answers[:6], answers[6:6 + len(raw)], answers[6 + len(raw):]

    normal, raw, too_wide = asyncio.run(burst())
    assert [r.status_code for r in normal] == [200] * 6
    for prompt, response in zip(PROMPTS[:3], normal[:3], strict=True):
        single = engine.chat(name, [{"role": "user", "content": prompt}], temperature=0, max_tokens=16)
        assert response.json()["choices"][0]["message"]["content"] == single.text
    for (field, _), response in zip(POISONS, raw, strict=True):
        assert response.status_code == 422 and response.json()["error"]["message"].startswith(f"{field}:")
    for response in too_wide:
        assert response.status_code == 400 and response.json()["error"]["message"].startswith("top_k:")
    metrics = version_metrics(workspace, name)
    assert (metrics.requests, metrics.errors) == (7, 0)  # the model's first load and the six users
    prometheus = app.state.serve.metrics.registry
    assert prometheus.get_sample_value("llmops_rejected_requests_total", {"status": "422"}) == len(POISONS)
    assert prometheus.get_sample_value("llmops_rejected_requests_total", {"status": "400"}) == 2
    engine.close()


@pytest.mark.integration
def test_an_upstreams_400_is_the_clients_400_and_no_error_of_the_version(tmp_path: Path,
                                                                          tiny_model_dir: Path) -> None:
    engine = InferenceModel(max_batch_size=8)
    remote = init_workspace(tmp_path / "remote")
    _register(remote, tiny_model_dir)
    vocab = AutoConfig.from_pretrained(tiny_model_dir).vocab_size
    with BackgroundServer(create_app(remote, engine=engine)) as server:
        local = init_workspace(tmp_path / "local")
        name = _register(local, tiny_model_dir, upstream_url=f"{server.url}/v1")

        async def calls() -> list[httpx.Response]:
            app = create_app(local)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=120) as client:
                    return [await client.post("/v1/chat/completions", json=chat_body(PROMPTS[2], top_k=top_k,
                                                                                     stream=stream))
                            for top_k, stream in ((vocab + 1, False), (vocab + 1, True), (vocab, False))]

        refused, refused_stream, served = asyncio.run(calls())
    engine.close()
    for response in (refused, refused_stream):
        assert response.status_code == 400 and "top_k" in response.json()["error"]["message"]
    assert served.status_code == 200
    for workspace in (local, remote):
        metrics = version_metrics(workspace, name)
        assert (metrics.requests, metrics.errors) == (1, 0)
