"""The embedded engine with the tiny model: spec 5.3 API, adapters by name, dynamic batching through the gateway."""

import asyncio
from pathlib import Path

import httpx
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.serve.engine import InferenceModel
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
    engine = InferenceModel(max_batch_size=32, batch_wait_ms=200)
    jobs = [(("chat-v1.0", "chat-v1.1")[i % 2], f"{PROMPTS[i % len(PROMPTS)]} ({i})") for i in range(32)]

    async def concurrent() -> list[httpx.Response]:
        app = create_app(workspace, engine=engine, ui=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=120) as client:
                for model in ("chat-v1.0", "chat-v1.1"):  # load both before the burst
                    await client.post("/v1/chat/completions", json={"model": model, "max_tokens": 1,
                                                                     "messages": [{"role": "user", "content": "hi"}]})
                return await asyncio.gather(*(client.post("/v1/chat/completions", json={
                    "model": model, "temperature": 0, "max_tokens": 16,
                    "messages": [{"role": "user", "content": prompt}]}) for model, prompt in jobs))

    batches_before = engine.batcher.batches
    responses = asyncio.run(concurrent())
    assert [r.status_code for r in responses] == [200] * 32
    assert engine.batcher.batches - batches_before < 32  # requests were batched together
    for (model, prompt), response in zip(jobs, responses, strict=True):
        single = engine.chat(model, [{"role": "user", "content": prompt}], temperature=0, max_tokens=16)
        body = response.json()
        assert body["model"] == model
        assert body["choices"][0]["message"]["content"] == single.text
        assert body["usage"]["completion_tokens"] == single.completion_tokens
    engine.close()
