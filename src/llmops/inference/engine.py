"""InferenceModel (spec 5.3): transformers + peft, one base model in memory with several LoRA adapters by name.

Every generation goes through one continuous batcher (`scheduler.py`): `generate`, `chat` and
`generate_batch` wait for their answers, `complete` and `stream` (the gateway's paths) await them, and all
requests in flight share the forward passes of their base model, each row with its own adapter (peft's
`adapter_names=`) and its own sampling parameters. Generation stops on the tokenizer's eos, at the token
limit or at the model's context length; `temperature == 0` is greedy decoding.
"""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmops.errors import LLMOpsError
from llmops.inference.decoding import Base, Listener, Row, check_cache_layout
from llmops.inference.scheduler import ContinuousBatcher
from llmops.inference.types import Chunk, ClientError, Completion, Message, PromptTooLong, Sampling
from llmops.inference.workers import settle


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    prompt: str
    sampling: Sampling


def _load_base(path: str) -> Base:
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise LLMOpsError(f"{path}: cannot load the model: {exc}") from exc
    model.eval()
    check_cache_layout(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = {tokenizer.eos_token_id, *_as_list(model.generation_config.eos_token_id)}
    return Base(model=model, tokenizer=tokenizer, eos_ids=sorted(i for i in eos if i is not None),
                context=int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30),
                vocab=int(model.config.vocab_size))


def _as_list(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else list(value)


class InferenceModel:
    """Loaded versions by name; each is a base model (shared by path) plus an optional LoRA adapter."""

    def __init__(self, *, max_batch_size: int = 32, batch_wait_ms: float = 0.0) -> None:
        self._bases: dict[str, Base] = {}
        self.models: dict[str, str] = {}  # model name → base key
        self._adapter_count = 0
        self.batcher = ContinuousBatcher(max_batch_size=max_batch_size, wait_ms=batch_wait_ms)

    def load_model(self, model_name: str, base_model: str, adapter_path: str | None = None) -> None:
        """Load `base_model` once (shared by every name on it) and, if given, the LoRA at `adapter_path`."""
        with self.batcher.exclusive():
            if model_name in self.models:
                return
            key = str(Path(base_model).expanduser().resolve()) if Path(base_model).exists() else base_model
            base = self._bases.get(key) or _load_base(key)
            self._bases[key] = base
            if adapter_path:
                self._add_adapter(base, model_name, adapter_path)
            self.models[model_name] = key

    def _add_adapter(self, base: Base, model_name: str, adapter_path: str) -> None:
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
        with self.batcher.exclusive():
            key = self.models.pop(model_name, None)
            if key is None:
                raise LLMOpsError(f"model {model_name!r}: not loaded")
            self.batcher.drop_model(model_name)
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

    def _base_of(self, model_name: str) -> Base:
        base = self._bases.get(self.models.get(model_name, ""))
        if base is None:
            raise LLMOpsError(f"model {model_name!r}: not loaded")
        return base

    def render_chat(self, model_name: str, messages: list[Message]) -> str:
        """The prompt for `messages` through the tokenizer's chat template (plain concatenation without one)."""
        tokenizer = self.tokenizer(model_name)
        if not tokenizer.chat_template:
            return "\n".join(message["content"] for message in messages)
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def generate(self, model_name: str, prompt: str, max_length: int = 512, temperature: float = 0.7,
                 **sampling: Any) -> str:
        """Spec 5.3: the continuation of `prompt` (at most `max_length` new tokens)."""
        request = GenerationRequest(model_name, prompt, Sampling(max_tokens=max_length, temperature=temperature,
                                                                  **sampling))
        return self.generate_batch([request])[0].text

    def chat(self, model_name: str, messages: list[Message], **sampling: Any) -> Completion:
        """The assistant's reply to `messages`."""
        prompt = self.render_chat(model_name, messages)
        return self.generate_batch([GenerationRequest(model_name, prompt, Sampling(**sampling))])[0]

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Completions of `requests`, in order, decoded together (and with whatever else is in flight)."""
        futures: list[Future[Completion]] = []
        try:
            for request in requests:
                futures.append(self.submit(request))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return [future.result() for future in futures]

    async def complete(self, model: str, messages: list[Message], sampling: Sampling) -> Completion:
        """ChatBackend: the reply to `messages`, decoded with whatever else is in flight."""
        future = self.submit(GenerationRequest(model, self.render_chat(model, messages), sampling))
        return await asyncio.wrap_future(future)

    async def stream(self, model: str, messages: list[Message], sampling: Sampling) -> AsyncGenerator[Chunk, None]:
        """ChatBackend: the reply as it is decoded; the last chunk carries the completion. Stopping early (a client
        that went away) frees the request's place in the batch."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[str | Completion | BaseException] = asyncio.Queue()

        def listener(event: str | Completion | BaseException) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's event loop is closed: nobody is listening
                loop.call_soon_threadsafe(events.put_nowait, event)

        future = self.submit(GenerationRequest(model, self.render_chat(model, messages), sampling), listener)
        try:
            while not isinstance(event := await events.get(), Completion):
                if isinstance(event, BaseException):
                    raise event
                yield Chunk(event)
            yield Chunk("", event)
        finally:
            future.cancel()

    def submit(self, request: GenerationRequest, listener: Listener | None = None) -> "Future[Completion]":
        """Queue `request` for decoding; the future gets its completion. Bad requests raise ClientError here, at once.
        It does not wait for the engine's lock (held through each decode step), so an event loop calling it
        is not held up by the forward pass in progress."""
        base = self._base_of(request.model)
        ids = base.tokenizer(request.prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ClientError("prompt: empty")
        if len(ids) >= base.context:
            raise PromptTooLong(f"prompt: {len(ids)} tokens; model {request.model!r} reads at most {base.context - 1}")
        if request.sampling.top_k > base.vocab:
            raise ClientError(f"top_k: {request.sampling.top_k} exceeds the vocabulary of model {request.model!r} "
                              f"({base.vocab} tokens)")
        future: Future[Completion] = Future()
        row = Row(prompt_ids=list(ids), model=request.model, sampling=request.sampling,
                  done=lambda result: settle(future, result), listener=listener, cancelled=future.cancelled)
        self.batcher.submit(base, row)
        return future

    def close(self) -> None:
        self.batcher.close()
