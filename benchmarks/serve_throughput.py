"""Serving throughput: the gateway (continuous batching) vs `generate` one request at a time vs one batched call.

For 1, 8 and 32 concurrent clients, each sending chat requests to the gateway (`llmops serve` in a child
process on 127.0.0.1; OpenAI route, greedy, fixed max tokens), it measures completion tokens/s and the p50/p99
latency, next to the same prompts generated one at a time in this process (`InferenceModel.chat`, no batching
wait) and all at once in a single `generate_batch`. The three are interleaved for several rounds and the
medians shown (the machine's load drifts), with the gateway's mean batch (rows per decode step). All three use
`--threads` torch threads (default: `$OMP_NUM_THREADS`, else every core), so the comparison is at equal
hardware.
Without `--model` it builds the demo's tiny base model (or a smaller one with `--tiny`) in a temp dir.

    .venv/bin/python benchmarks/serve_throughput.py            # replies of up to 128 tokens, the serve default
    .venv/bin/python benchmarks/serve_throughput.py --max-tokens 32
"""

import argparse
import asyncio
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import aiohttp
import httpx
import torch
from rich.console import Console
from rich.table import Table

from llmops.demo.base_model import BaseModelSpec, build_base_model
from llmops.demo.preset import preset_texts
from llmops.inference.engine import GenerationRequest, InferenceModel
from llmops.inference.types import Sampling
from llmops.models import registry
from llmops.models.metrics import percentile
from llmops.serve.server import GatewayProcess
from llmops.settings import ServeSettings
from llmops.workspace import init_workspace

MODEL = "chat-v1.0"
QUESTIONS = ["How do I charge the earbuds?", "蓝牙耳机多少钱？", "Can I return the desk lamp?", "保温杯支持退货吗？",
             "What does the power bank cost?", "机械键盘怎么样？", "Is the sports watch waterproof?", "台灯多少钱？"]
TINY = BaseModelSpec(vocab_size=1200, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                     intermediate_size=192, max_position_embeddings=512, block_size=64, batch_size=8, steps=60)
console = Console(width=200)


@dataclass(frozen=True)
class Result:
    tokens_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int


def prompts(n: int) -> list[str]:
    return [f"{QUESTIONS[i % len(QUESTIONS)]} ({i})" for i in range(n)]


def summarize(tokens: int, elapsed: float, latencies: list[float]) -> Result:
    return Result(tokens / elapsed, percentile(latencies, 50), percentile(latencies, 99), len(latencies))


async def gateway_load(url: str, clients: int, per_client: int, max_tokens: int) -> Result:
    latencies: list[float] = []
    tokens = 0

    async def client(http: aiohttp.ClientSession, index: int) -> None:
        nonlocal tokens
        for question in prompts(per_client * clients)[index::clients]:
            start = time.perf_counter()
            body = {"model": MODEL, "temperature": 0, "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": question}]}
            async with http.post(f"{url}/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                tokens += (await response.json())["usage"]["completion_tokens"]
            latencies.append((time.perf_counter() - start) * 1000)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http, i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return summarize(tokens, elapsed, latencies)


def one_at_a_time(engine: InferenceModel, n: int, max_tokens: int) -> Result:
    latencies, tokens = [], 0
    start = time.perf_counter()
    for question in prompts(n):
        t0 = time.perf_counter()
        reply = engine.chat(MODEL, [{"role": "user", "content": question}], temperature=0, max_tokens=max_tokens)
        latencies.append((time.perf_counter() - t0) * 1000)
        tokens += reply.completion_tokens
    return summarize(tokens, time.perf_counter() - start, latencies)


def one_batch(engine: InferenceModel, n: int, max_tokens: int) -> Result:
    sampling = Sampling(max_tokens=max_tokens, temperature=0)
    requests = [GenerationRequest(MODEL, engine.render_chat(MODEL, [{"role": "user", "content": q}]), sampling)
                for q in prompts(n)]
    start = time.perf_counter()
    replies = engine.generate_batch(requests)
    elapsed = time.perf_counter() - start
    return summarize(sum(r.completion_tokens for r in replies), elapsed, [elapsed * 1000] * n)


def model_dir(args: argparse.Namespace, tmp: Path) -> Path:
    """The model to serve; a built one is trained in a child process, which leaves this one as if fresh (training
    here first made the in-process baselines up to 2× slower afterwards)."""
    if args.model:
        return Path(args.model)
    spec = TINY if args.tiny else BaseModelSpec()
    with console.status("building the tiny base model"), ProcessPoolExecutor(1, get_context("spawn")) as pool:
        pool.submit(build_base_model, tmp / "model", preset_texts(), spec).result()
    return tmp / "model"


def batching_counts(url: str) -> tuple[int, int]:
    batching = httpx.get(f"{url}/v1/metrics", timeout=30).json()["batching"]
    return int(batching["steps"]), int(batching["rows"])


def median(results: list[Result]) -> Result:
    return sorted(results, key=lambda r: r.tokens_per_s)[len(results) // 2]


def measure(url: str, engine: InferenceModel, clients: int, args: argparse.Namespace) -> list[str]:
    """The three ways, interleaved `args.rounds` times (the machine's load drifts); medians by tokens/s."""
    gateway, sequential, batched = [], [], []
    steps, rows = batching_counts(url)
    for _ in range(args.rounds):
        gateway.append(asyncio.run(gateway_load(url, clients, args.per_client, args.max_tokens)))
        sequential.append(one_at_a_time(engine, clients * args.per_client, args.max_tokens))
        batched.append(one_batch(engine, clients, args.max_tokens))
    steps_after, rows_after = batching_counts(url)
    gw, seq, one = median(gateway), median(sequential), median(batched)
    return [
        str(clients), f"{(rows_after - rows) / max(1, steps_after - steps):.1f}",
        f"{gw.tokens_per_s:,.0f}", f"{gw.p50_ms:.0f}", f"{gw.p99_ms:.0f}",
        f"{seq.tokens_per_s:,.0f}", f"{seq.p50_ms:.0f}", f"{seq.p99_ms:.0f}",
        f"{one.tokens_per_s:,.0f}", f"{gw.tokens_per_s / seq.tokens_per_s:.1f}×",
        f"{gw.tokens_per_s / one.tokens_per_s:.2f}×",
    ]


def run(args: argparse.Namespace, tmp: Path) -> None:
    base = model_dir(args, tmp)
    workspace = init_workspace(tmp / "ws")
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=str(base), path=str(base),
                              merged=True)
    engine = InferenceModel(batch_wait_ms=0)
    engine.load_model(MODEL, str(base))
    one_at_a_time(engine, 2, args.max_tokens)  # warm-up
    table = Table(title=f"chat completions, greedy, max {args.max_tokens} tokens; gateway = `llmops serve` process; "
                        f"{args.threads} torch threads each (load average {os.getloadavg()[0]:.1f} on "
                        f"{os.cpu_count()} cores)")
    for column in ("clients", "gw rows/step", "gateway tok/s", "p50 ms", "p99 ms", "one-at-a-time tok/s", "p50 ms",
                   "p99 ms", "1 batched generate tok/s", "gw / one-at-a-time", "gw / batched"):
        table.add_column(column, justify="right")
    overrides = [f"serve.batch_wait_ms={args.wait_ms}", "serve.max_batch_size=32"]
    with GatewayProcess(workspace.root, tmp / "gateway.log", overrides) as server:
        asyncio.run(gateway_load(server.url, 1, 1, 4))  # loads the model in the gateway
        for clients in (1, 8, 32):
            table.add_row(*measure(server.url, engine, clients, args))
    engine.close()
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="HF model folder (default: build the demo's tiny base model)")
    parser.add_argument("--tiny", action="store_true", help="build a smaller model (64 hidden, 2 layers)")
    parser.add_argument("--max-tokens", type=int, default=128, help="max tokens per reply (default: the serve default)")
    parser.add_argument("--per-client", type=int, default=4, help="requests each client sends per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows medians")
    parser.add_argument("--wait-ms", type=float, default=ServeSettings().batch_wait_ms,
                        help="batching wait when idle (serve.batch_wait_ms; default: the serve default)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1),
                        help="torch threads, in both processes (default: $OMP_NUM_THREADS, else every core)")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the gateway process inherits it
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
