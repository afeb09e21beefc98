"""The demo's tiny base model: a small Qwen2 fully pre-trained on the preset documents, on a CPU.

`build_base_model` trains the tokenizer, packs the documents into token blocks (5% held out), pre-trains a
causal LM with a plain torch loop (fp32, deterministic given the seed) and saves an HF folder that
`AutoModelForCausalLM` loads and `llamafactory-cli train` accepts with `template: qwen`.
"""

import hashlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from llmops.demo.preset import preset_texts
from llmops.demo.tokenizer import ENDOFTEXT, IM_END, save_tokenizer, token_id, train_tokenizer
from llmops.errors import LLMOpsError, located
from llmops.fileio import write_json_atomic

BUILD_INFO = "build_info.json"
BASE_DIRNAME = "demo-base"
console = Console()


@dataclass(frozen=True)
class BaseModelSpec:
    """Sizes and training schedule of the tiny base model.

    The defaults are the demo's model: ~1.2M parameters, ~75 s on one free CPU core.
    """

    vocab_size: int = 4000
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 1024
    block_size: int = 128
    batch_size: int = 16
    steps: int = 250
    learning_rate: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    heldout_fraction: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class BuildReport:
    """What a build produced: where, how big, the held-out loss before/after pre-training, and how long."""

    out_dir: Path
    vocab_size: int
    parameters: int
    train_blocks: int
    heldout_blocks: int
    loss_before: float
    loss_after: float
    seconds: float
    corpus_sha256: str


def corpus_digest(texts: Sequence[str]) -> str:
    """sha256 of the documents (length-prefixed, so document boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def pack_blocks(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str], block_size: int) -> torch.Tensor:
    """Concatenate the documents (each followed by `<|endoftext|>`) and cut them into full blocks."""
    separator = token_id(tokenizer, ENDOFTEXT)
    stream: list[int] = []
    for encoding in tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False):
        stream.extend(encoding.ids)
        stream.append(separator)
    count = len(stream) // block_size
    if count < 2:
        raise LLMOpsError(
            f"pre-training corpus too small: {len(stream)} tokens, need at least 2 blocks of {block_size}"
        )
    return torch.tensor(stream[: count * block_size], dtype=torch.long).view(count, block_size)


def split_blocks(blocks: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle the blocks with `seed` and hold out `fraction` of them (at least one)."""
    order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))
    heldout = max(1, round(len(blocks) * fraction))
    return blocks[order[heldout:]], blocks[order[:heldout]]


def build_model(spec: BaseModelSpec, tokenizer: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 (tied embeddings) sized by `spec`, ids matching `tokenizer`."""
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=token_id(tokenizer, IM_END),
        pad_token_id=token_id(tokenizer, ENDOFTEXT),
        dtype="float32",
    )
    torch.manual_seed(spec.seed)
    return Qwen2ForCausalLM(config)  # type: ignore[no-untyped-call]


@torch.no_grad()
def heldout_loss(model: Qwen2ForCausalLM, blocks: torch.Tensor, batch_size: int) -> float:
    """Mean next-token loss over `blocks` (every block has the same length, so batch means average evenly)."""
    model.train(False)
    total = 0.0
    for start in range(0, len(blocks), batch_size):
        batch = blocks[start : start + batch_size]
        total += float(model(input_ids=batch, labels=batch).loss) * len(batch)
    return total / len(blocks)


def learning_rate_at(step: int, spec: BaseModelSpec) -> float:
    """Linear warm-up then cosine decay to 10% of the peak."""
    if step < spec.warmup_steps:
        return spec.learning_rate * (step + 1) / spec.warmup_steps
    progress = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
    return spec.learning_rate * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def pretrain(model: Qwen2ForCausalLM, train: torch.Tensor, spec: BaseModelSpec) -> None:
    """Causal-LM pre-training on shuffled batches of `train` blocks, with a rich progress bar."""
    generator = torch.Generator().manual_seed(spec.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    model.train()
    order = torch.randperm(len(train), generator=generator)
    cursor = 0
    with Progress(transient=False) as progress:
        task = progress.add_task("pre-training", total=spec.steps)
        for step in range(spec.steps):
            if cursor + spec.batch_size > len(order):
                order, cursor = torch.randperm(len(train), generator=generator), 0
            batch = train[order[cursor : cursor + spec.batch_size]]
            cursor += spec.batch_size
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(step, spec)
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            progress.update(task, advance=1, description=f"pre-training loss {loss.item():.3f}")


def build_base_model(out_dir: Path, texts: Sequence[str], spec: BaseModelSpec | None = None) -> BuildReport:
    """Train tokenizer and model on `texts`; write the HF folder to `out_dir` in one rename at the end."""
    spec = spec or BaseModelSpec()
    _check_replaceable(out_dir)
    started = time.perf_counter()
    torch.manual_seed(spec.seed)
    tokenizer = train_tokenizer(texts, spec.vocab_size, spec.max_position_embeddings)
    train, heldout = split_blocks(pack_blocks(tokenizer, texts, spec.block_size), spec.heldout_fraction, spec.seed)
    model = build_model(spec, tokenizer)
    parameters = sum(p.numel() for p in model.parameters())
    console.print(
        f"tiny Qwen2: {parameters:,} parameters, vocab {len(tokenizer)}, "
        f"{len(train)} training / {len(heldout)} held-out blocks of {spec.block_size} tokens"
    )
    loss_before = heldout_loss(model, heldout, spec.batch_size)
    console.print(f"held-out loss before pre-training: {loss_before:.3f}")
    pretrain(model, train, spec)
    loss_after = heldout_loss(model, heldout, spec.batch_size)
    console.print(f"held-out loss after pre-training: {loss_after:.3f}")
    report = BuildReport(
        out_dir=out_dir,
        vocab_size=len(tokenizer),
        parameters=parameters,
        train_blocks=len(train),
        heldout_blocks=len(heldout),
        loss_before=loss_before,
        loss_after=loss_after,
        seconds=time.perf_counter() - started,
        corpus_sha256=corpus_digest(texts),
    )
    _save(out_dir, model, tokenizer, spec, report)
    return report


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to overwrite anything but an empty folder or an earlier build (never a folder of other files)."""
    if out_dir.is_file() or (out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / BUILD_INFO).is_file()):
        raise LLMOpsError(f"{out_dir}: exists and is not a base model build; choose an empty or new folder")


def _save(
    out_dir: Path, model: Qwen2ForCausalLM, tokenizer: PreTrainedTokenizerFast, spec: BaseModelSpec, report: BuildReport
) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)
    try:
        model.generation_config.pad_token_id = model.config.pad_token_id
        model.save_pretrained(str(staging), safe_serialization=True)
        save_tokenizer(tokenizer, staging)
        info = {key: value for key, value in asdict(report).items() if key != "out_dir"}
        write_json_atomic(staging / BUILD_INFO, {"spec": asdict(spec), **info})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_build_info(model_dir: Path) -> dict[str, object] | None:
    """The `build_info.json` of a finished build, or None when `model_dir` holds none."""
    path = model_dir / BUILD_INFO
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise located(path, exc.lineno, None, f"invalid JSON: {exc.msg}") from exc
    if not isinstance(info, dict):
        raise located(path, 1, None, "expected a JSON object")
    return info


def ensure_base_model(cache_dir: Path, texts: Sequence[str] | None = None, spec: BaseModelSpec | None = None) -> Path:
    """`cache_dir/demo-base`, built first unless a finished build of the same documents and spec is there.

    `texts` defaults to the bundled preset documents, `spec` to the demo's sizes.
    """
    spec = spec or BaseModelSpec()
    documents = list(texts) if texts is not None else preset_texts()
    out_dir = cache_dir / BASE_DIRNAME
    info = read_build_info(out_dir)
    if info and info.get("spec") == asdict(spec) and info.get("corpus_sha256") == corpus_digest(documents):
        console.print(f"reusing the base model in {out_dir}")
        return out_dir
    build_base_model(out_dir, documents, spec)
    return out_dir
