"""The embedded engine with the tiny model: spec 5.3 API, adapters by name, continuous batching through the gateway,
streaming, cancellation, and greedy output equal to transformers' own `generate`."""

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmops.errors import LLMOpsError
from llmops.inference.engine import GenerationRequest, InferenceModel
from llmops.inference.types import Chunk, Sampling
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace

pytestmark = pytest.mark.integration
PROMPTS = ["How do I charge the Bluetooth earbuds?", "蓝牙耳机怎么充电？", "Can I return the desk lamp?",
           "保温杯多少钱？", "What does the power bank cost?", "机械键盘支持退货吗？", "Hello", "运动手表"]


def random_lora(base: Path, out: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_lora(tiny_model_dir, tmp_path_factory.mktemp("lora") / "adapter", seed=1)


def test_spec_api_adapters_share_one_base(tiny_model_dir: Path, lora_dir: Path) -> None:
    engine = InferenceModel()
    engine.load_model("chat-v1.0", str(tiny_model_dir))
    engine.load_model("chat-v1.1", str(tiny_model_dir), str(lora_dir))
    assert len(engine._bases) == 1
    text = engine.generate("chat-v1.0", "The desk lamp costs", max_length=12, temperature=0)
    assert isinstance(text, str) and text
    messages = [{"role": "user", "content": PROMPTS[0]}]
    base_reply = engine.chat("chat-v1.0", messages, temperature=0, max_tokens=12)
    lora_reply = engine.chat("chat-v1.1", messages, temperature=0, max_tokens=12)
    assert base_reply.text != lora_reply.text  # the adapter is applied by name
    assert base_reply.completion_tokens <= 12 and base_reply.finish_reason in ("stop", "length")
    sampled = engine.chat("chat-v1.1", messages, temperature=1.0, top_p=0.9, top_k=20, max_tokens=8)
    assert sampled.completion_tokens <= 8
    engine.unload_model("chat-v1.1")
    assert engine.chat("chat-v1.0", messages, temperature=0, max_tokens=12) == base_reply
    with pytest.raises(LLMOpsError, match="not loaded"):
        engine.generate("chat-v1.1", "x")
    engine.unload_model("chat-v1.0")
    assert not engine._bases


def test_32_concurrent_requests_equal_unbatched_greedy(workspace: Workspace, tiny_model_dir: Path,
                                                        lora_dir: Path) -> None:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=str(tiny_model_dir),
                              path=str(tiny_model_dir), merged=True)
    registry.register_version(workspace, kind="chat", stage="dpo", parent="chat-v1.0", base_model=str(tiny_model_dir),
                              path=str(lora_dir), merged=False)
    engine = InferenceModel(max_batch_size=32, batch_wait_ms=100)
    jobs = [(("chat-v1.0", "chat-v1.1")[i % 2], f"{PROMPTS[i % len(PROMPTS)]} ({i})") for i in range(32)]

    async def concurrent() -> list[httpx.Response]:
        app = create_app(workspace, engine=engine)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=120) as client:
                for model in ("chat-v1.0", "chat-v1.1"):  # load both before the burst
                    await client.post("/v1/chat/completions", json={"model": model, "max_tokens": 1,
                                                                     "messages": [{"role": "user", "content": "hi"}]})
                return await asyncio.gather(*(client.post("/v1/chat/completions", json={
                    "model": model, "temperature": 0, "max_tokens": 16,
                    "messages": [{"role": "user", "content": prompt}]}) for model, prompt in jobs))

    before = dataclasses.replace(engine.batcher.stats)
    responses = asyncio.run(concurrent())
    assert [r.status_code for r in responses] == [200] * 32
    stats = engine.batcher.stats
    assert (stats.rows - before.rows) / (stats.steps - before.steps) > 4  # requests were decoded together
    for (model, prompt), response in zip(jobs, responses, strict=True):
        single = engine.chat(model, [{"role": "user", "content": prompt}], temperature=0, max_tokens=16)
        body = response.json()
        assert body["model"] == model
        assert body["choices"][0]["message"]["content"] == single.text
        assert body["usage"]["completion_tokens"] == single.completion_tokens
    engine.close()


@pytest.mark.parametrize("adapter", [False, True], ids=["base", "lora"])
def test_greedy_equals_transformers_generate(tiny_model_dir: Path, lora_dir: Path, adapter: bool) -> None:
    """The engine's own decode loop against transformers' `generate` (with the repetition penalty), one by one
    and batched."""
    reference: Any = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    if adapter:
        reference = PeftModel.from_pretrained(reference, lora_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    engine = InferenceModel()
    engine.load_model("m", str(tiny_model_dir), str(lora_dir) if adapter else None)
    prompts = [engine.render_chat("m", [{"role": "user", "content": p}]) for p in PROMPTS]
    sampling = Sampling(max_tokens=20, temperature=0, repetition_penalty=1.3)
    batched = engine.generate_batch([GenerationRequest("m", p, sampling) for p in prompts])
    for prompt, together in zip(prompts, batched, strict=True):
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            output = reference.generate(**inputs, max_new_tokens=20, do_sample=False, repetition_penalty=1.3,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        ids = [t for t in output[0, inputs["input_ids"].shape[1]:].tolist() if t != tokenizer.eos_token_id]
        expected = tokenizer.decode(ids, skip_special_tokens=True)
        assert engine.generate_batch([GenerationRequest("m", prompt, sampling)])[0].text == expected
        assert together.text == expected
    engine.close()


def test_stream_is_incremental_and_a_closed_stream_frees_its_row(tiny_model_dir: Path) -> None:
    engine = InferenceModel()
    engine.load_model("m", str(tiny_model_dir))
    messages = [{"role": "user", "content": PROMPTS[2]}]
    greedy = Sampling(max_tokens=24, temperature=0)

    async def run() -> tuple[list[Chunk], int]:
        chunks = [chunk async for chunk in engine.stream("m", messages, greedy)]
        stream = engine.stream("m", messages, Sampling(max_tokens=400, temperature=0, repetition_penalty=1.0))
        await anext(stream)
        await stream.aclose()  # the client went away
        return chunks, engine.batcher.stats.rows

    chunks, rows_at_close = asyncio.run(run())
    final = chunks[-1].completion
    assert final is not None and final == engine.chat("m", messages, temperature=0, max_tokens=24)
    assert len(chunks) > 3 and all(chunk.text for chunk in chunks[:-1])
    assert "".join(chunk.text for chunk in chunks) == final.text
    deadline = time.monotonic() + 30
    while engine.batcher.in_flight() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.batcher.in_flight() == 0
    assert engine.batcher.stats.rows - rows_at_close < 50  # decoding stopped long before 400 tokens
    engine.close()


def test_unloading_a_model_fails_its_requests_in_flight(tiny_model_dir: Path, lora_dir: Path) -> None:
    engine = InferenceModel()
    engine.load_model("base", str(tiny_model_dir))
    engine.load_model("lora", str(tiny_model_dir), str(lora_dir))
    long = Sampling(max_tokens=300, temperature=0, repetition_penalty=1.0)
    doomed = engine.submit(GenerationRequest("lora", "The desk lamp", long))
    kept = engine.submit(GenerationRequest("base", "The desk lamp", Sampling(max_tokens=30, temperature=0)))
    while engine.batcher.stats.rows < 4:  # both are being decoded: the unload must get in between two steps
        time.sleep(0.001)
    engine.unload_model("lora")
    with pytest.raises(LLMOpsError, match="unloaded while generating"):
        doomed.result(timeout=60)
    assert kept.result(timeout=60).completion_tokens > 0
    engine.close()
