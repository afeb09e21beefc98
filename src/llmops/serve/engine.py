"""InferenceModel (spec 5.3): transformers + peft, one base model in memory with several LoRA adapters by name.

`generate` and `chat` run at once in the caller's thread; `complete` (the gateway's path) goes through a
dynamic batcher, so concurrent requests share one `generate` call. Requests in one batch may use different
adapters of the same base (peft's `adapter_names=`); requests whose sampling parameters differ run as
separate `generate` calls. Prompts are padded on the left, generation stops on the tokenizer's eos, and
`temperature == 0` is greedy decoding.
"""

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmops.errors import LLMOpsError
from llmops.serve.batching import DynamicBatcher
from llmops.serve.types import Completion, Message, Sampling

BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    prompt: str
    sampling: Sampling


@dataclass
class _Base:
    model: Any  # a transformers model, or a PeftModel once an adapter is loaded on it
    tokenizer: Any
    eos_ids: list[int]
    adapters: dict[str, str] = field(default_factory=dict)  # model name → peft adapter name


def _load_base(path: str) -> _Base:
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise LLMOpsError(f"{path}: cannot load the model: {exc}") from exc
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = {tokenizer.eos_token_id, *_as_list(model.generation_config.eos_token_id)}
    return _Base(model=model, tokenizer=tokenizer, eos_ids=sorted(i for i in eos if i is not None))


def _as_list(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


class InferenceModel:
    """Loaded versions by name; each is a base model (shared by path) plus an optional LoRA adapter."""

    def __init__(self, *, max_batch_size: int = 32, batch_wait_ms: float = 5.0) -> None:
        self._bases: dict[str, _Base] = {}
        self.models: dict[str, str] = {}  # model name → base key
        self._lock = threading.RLock()
        self._adapter_count = 0
        self.batcher: DynamicBatcher[GenerationRequest, Completion] = DynamicBatcher(
            self.generate_batch, max_batch_size=max_batch_size, wait_ms=batch_wait_ms, name="llmops-batcher"
        )

    def load_model(self, model_name: str, base_model: str, adapter_path: str | None = None) -> None:
        """Load `base_model` once (shared by every name on it) and, if given, the LoRA at `adapter_path`."""
        with self._lock:
            if model_name in self.models:
                return
            key = str(Path(base_model).expanduser().resolve()) if Path(base_model).exists() else base_model
            base = self._bases.get(key) or _load_base(key)
            self._bases[key] = base
            if adapter_path:
                self._add_adapter(base, model_name, adapter_path)
            self.models[model_name] = key

    def _add_adapter(self, base: _Base, model_name: str, adapter_path: str) -> None:
        if not (Path(adapter_path) / "adapter_model.safetensors").is_file():
            raise LLMOpsError(f"{adapter_path}: no adapter_model.safetensors (weights load only from safetensors)")
        self._adapter_count += 1
        adapter = f"adapter_{self._adapter_count}"
        try:
            if isinstance(base.model, PeftModel):
                base.model.load_adapter(adapter_path, adapter_name=adapter)
            else:
                base.model = PeftModel.from_pretrained(base.model, adapter_path, adapter_name=adapter)
        except (OSError, ValueError) as exc:
            raise LLMOpsError(f"{adapter_path}: cannot load the LoRA adapter: {exc}") from exc
        base.model.eval()
        base.adapters[model_name] = adapter

    def unload_model(self, model_name: str) -> None:
        """Forget `model_name`; its adapter is deleted, and the base too once nothing uses it."""
        with self._lock:
            key = self.models.pop(model_name, None)
            if key is None:
                raise LLMOpsError(f"model {model_name!r}: not loaded")
            base = self._bases[key]
            adapter = base.adapters.pop(model_name, None)
            if adapter is not None and base.adapters:
                base.model.delete_adapter(adapter)
            elif adapter is not None:
                base.model = base.model.unload()
            if key not in self.models.values():
                del self._bases[key]

    def tokenizer(self, model_name: str) -> Any:
        return self._base_of(model_name).tokenizer

    def _base_of(self, model_name: str) -> _Base:
        key = self.models.get(model_name)
        if key is None:
            raise LLMOpsError(f"model {model_name!r}: not loaded")
        return self._bases[key]

    def render_chat(self, model_name: str, messages: list[Message]) -> str:
        """The prompt for `messages` through the tokenizer's chat template (plain concatenation without one)."""
        tokenizer = self.tokenizer(model_name)
        if not tokenizer.chat_template:
            return "\n".join(message["content"] for message in messages)
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def generate(self, model_name: str, prompt: str, max_length: int = 512, temperature: float = 0.7,
                 **sampling: Any) -> str:
        """Spec 5.3: the continuation of `prompt` (at most `max_length` new tokens), generated right now."""
        request = GenerationRequest(model_name, prompt, Sampling(max_tokens=max_length, temperature=temperature,
                                                                  **sampling))
        return self.generate_batch([request])[0].text

    def chat(self, model_name: str, messages: list[Message], **sampling: Any) -> Completion:
        """The assistant's reply to `messages`, generated right now (no batching)."""
        prompt = self.render_chat(model_name, messages)
        return self.generate_batch([GenerationRequest(model_name, prompt, Sampling(**sampling))])[0]

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        """ChatBackend: the reply to `messages`, batched with whatever else is waiting."""
        prompt = self.render_chat(model, messages)
        future = self.batcher.submit(GenerationRequest(model, prompt, sampling))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self.batcher.close()

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Completions of `requests`, in order: one `generate` per (base, sampling) group."""
        results: dict[int, Completion] = {}
        with self._lock:
            groups: dict[tuple[str, Sampling], list[int]] = {}
            for index, request in enumerate(requests):
                key = (self._base_key(request.model), request.sampling.batch_key())
                groups.setdefault(key, []).append(index)
            for (base_key, _), indices in groups.items():
                batch = [requests[i] for i in indices]
                results.update(zip(indices, self._generate_group(self._bases[base_key], batch), strict=True))
        return [results[i] for i in range(len(requests))]

    def _base_key(self, model_name: str) -> str:
        if model_name not in self.models:
            raise LLMOpsError(f"model {model_name!r}: not loaded")
        return self.models[model_name]

    def _generate_group(self, base: _Base, batch: list[GenerationRequest]) -> list[Completion]:
        tokenizer = base.tokenizer
        inputs = tokenizer([r.prompt for r in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        sampling = batch[0].sampling
        options = _generation_options(sampling, max(r.sampling.max_tokens for r in batch), base.eos_ids,
                                      tokenizer.pad_token_id)
        if isinstance(base.model, PeftModel):
            options["adapter_names"] = [base.adapters.get(r.model, BASE_ADAPTER) for r in batch]
        with torch.inference_mode():
            output = base.model.generate(**inputs, **options)
        prompt_len = inputs["input_ids"].shape[1]
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        return [
            _completion(tokenizer, output[i, prompt_len:].tolist(), r.sampling.max_tokens, base.eos_ids,
                        int(prompt_tokens[i]))
            for i, r in enumerate(batch)
        ]


def _generation_options(sampling: Sampling, max_new_tokens: int, eos_ids: list[int], pad_id: int) -> dict[str, Any]:
    options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "eos_token_id": eos_ids, "pad_token_id": pad_id,
                               "repetition_penalty": sampling.repetition_penalty, "do_sample": not sampling.greedy}
    if sampling.greedy:
        return {**options, "temperature": None, "top_p": None, "top_k": None}
    return {**options, "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k}


def _completion(tokenizer: Any, ids: list[int], max_tokens: int, eos_ids: list[int], prompt_tokens: int) -> Completion:
    ids = ids[:max_tokens]
    stop = next((i for i, token in enumerate(ids) if token in eos_ids), None)
    kept = ids if stop is None else ids[:stop]
    text = tokenizer.decode(kept, skip_special_tokens=True)
    return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(kept),
                      finish_reason="length" if stop is None else "stop")
