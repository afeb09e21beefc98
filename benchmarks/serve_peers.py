"""Serving against the peer a CPU user would pick instead: llmops embedded vs llama.cpp's `llama-server`.

Three servers answer the same chat prompts (the demo's shop questions) over HTTP, greedy (temperature 0, the
serving default's repetition penalty, which the gateway sends upstream over the whole context and is sent to
llama-server direct the same way): llmops embedded (`llmops serve` on a workspace with chat-v1.0 as a merged
version; continuous batching), `llama-server` direct (the same model converted to GGUF f32; `--parallel 32 -cb`),
and `llama-server` behind the llmops gateway as a version's `upstream_url` (what the gateway itself adds, with
the gateway process's CPU time per request). Each uses `--threads` threads (torch's in the gateway, `-t` in
llama.cpp; default 1). Before timing, the replies to every prompt are compared (embedded vs llama.cpp,
gateway-over-llama vs llama.cpp; llama.cpp's `completion_tokens` also counts the end token), with how many stopped
by themselves and their mean length.
Then 1/8/32 clients × 32/128 max tokens, and streaming at 8 clients with the time to first token, interleaved
for `--rounds` rounds (medians shown). `llama-server` comes from `$LLMOPS_LLAMA_SERVER` or is built once
(see `_llama_cpp.py`). Without `--model` the demo's chat-v1.0 is trained once (its offline phase: CPT + SFT,
a few minutes) into the llmops cache. Not part of CI; `make bench` runs it only when `llama-server` is there.

    .venv/bin/python benchmarks/serve_peers.py --model /path/to/chat-v1.0 [--rounds 3] [--json FILE]
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import httpx
from rich.console import Console
from rich.table import Table

import _llama_cpp
from llmops.demo.cache import default_cache_dir
from llmops.demo.prompts import user_prompts
from llmops.inference.upstream import PENALTY_WINDOW
from llmops.models import registry
from llmops.models.metrics import percentile
from llmops.serve.server import GatewayProcess, free_port
from llmops.settings import ServeSettings
from llmops.workspace import init_workspace

CONFIGS = [(1, 128, False), (1, 32, False), (8, 128, False), (8, 32, False), (8, 128, True), (32, 128, False),
           (32, 32, False)]
TARGETS = ("llmops", "llama.cpp", "gw→llama")
# the serving default's repetition penalty, sent to all three as the gateway sends it upstream (under both names,
# over the same window): llama-server direct then samples as the other two
PENALTY = {"repetition_penalty": ServeSettings().repetition_penalty,
           "repeat_penalty": ServeSettings().repetition_penalty, "repeat_last_n": PENALTY_WINDOW}
console = Console(width=240)


@dataclass(frozen=True)
class Result:
    tokens_per_s: float
    p50_ms: float
    p99_ms: float
    ttft_p50_ms: float
    requests: int
    cpu_ms_per_request: float  # of the target's `pid` (user + system time), 0 without one


@dataclass(frozen=True)
class Target:
    url: str
    model: str
    pid: int = 0  # the process whose CPU time per request is measured (the gateway's)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chat_model(args: argparse.Namespace) -> Path:
    """`--model`, else the demo's chat-v1.0, trained once (the demo's offline phase) into the llmops cache."""
    if args.model:
        return Path(args.model).resolve()
    cached = default_cache_dir() / "bench" / "chat-v1.0"
    if (cached / "config.json").is_file():
        return cached
    from llmops.demo.base_model import ensure_base_model
    from llmops.demo.run import DemoConfig, Summary, offline_training, prepare_workspace

    config = DemoConfig(workspace=cached.parent / "demo-ws", cache_dir=default_cache_dir())
    workspace = prepare_workspace(config, ensure_base_model(config.cache_dir), replace=True)
    chat, _ = offline_training(workspace, config, Summary())
    shutil.copytree(chat.path, cached, ignore=shutil.ignore_patterns("checkpoint-*"))
    shutil.rmtree(config.workspace)
    return cached


@contextmanager
def llama_server(binary: Path, gguf: Path, threads: int, log: Path) -> Iterator[str]:
    """`llama-server` on 127.0.0.1 and a free port, 32 slots of 512 tokens, continuous batching (and enough HTTP
    threads for 32 kept-alive client connections: its default of 8 makes the others wait or be dropped)."""
    port = free_port()
    command = [str(binary), "-m", str(gguf), "-t", str(threads), "-tb", str(threads), "-c", str(32 * 512),
               "--parallel", "32", "-cb", "--threads-http", "64", "--jinja", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"llama-server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


async def _one(http: aiohttp.ClientSession, target: Target, question: str, max_tokens: int,
               stream: bool) -> tuple[str, int, float, str]:
    """(reply, completion tokens, seconds to the first token, finish reason) of one chat request."""
    body: dict[str, object] = {"model": target.model, "temperature": 0, "max_tokens": max_tokens, "stream": stream,
            "messages": [{"role": "user", "content": question}], **PENALTY}
    if stream:
        body["stream_options"] = {"include_usage": True}
    start = time.perf_counter()
    return await _post(http, f"{target.url}/v1/chat/completions", body, start)


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, object],
                start: float) -> tuple[str, int, float, str]:
    async with http.post(url, json=body) as response:
        response.raise_for_status()
        if not body["stream"]:
            reply = await response.json()
            choice = reply["choices"][0]
            return (choice["message"]["content"], reply["usage"]["completion_tokens"], time.perf_counter() - start,
                    choice["finish_reason"])
        return await _read_stream(response, start)


async def _read_stream(response: aiohttp.ClientResponse, start: float) -> tuple[str, int, float, str]:
    pieces, tokens, first, finish = [], 0, 0.0, ""
    async for raw in response.content:
        line = raw.decode().strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        event = json.loads(line[5:])
        if event.get("usage"):
            tokens = event["usage"]["completion_tokens"]
        for choice in event.get("choices") or []:
            text = (choice.get("delta") or {}).get("content") or ""
            if text and not first:
                first = time.perf_counter() - start
            pieces.append(text)
            finish = choice.get("finish_reason") or finish
    return "".join(pieces), tokens, first, finish


async def load(target: Target, questions: list[str], clients: int, max_tokens: int, stream: bool) -> Result:
    """`clients` concurrent clients sending `questions` (split between them); tokens/s, latencies, TTFT."""
    latencies: list[float] = []
    firsts: list[float] = []
    tokens = 0

    async def client(http: aiohttp.ClientSession, index: int) -> None:
        nonlocal tokens
        for question in questions[index::clients]:
            start = time.perf_counter()
            _, count, first, _ = await _one(http, target, question, max_tokens, stream)
            latencies.append((time.perf_counter() - start) * 1000)
            firsts.append(first * 1000)
            tokens += count

    # llama-server closes a streamed reply's connection unannounced, so streaming requests (to all three) each
    # open their own connection rather than reuse one the server may have closed
    connector = aiohttp.TCPConnector(limit=clients, force_close=stream)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as http:
        cpu = cpu_seconds(target.pid) if target.pid else 0.0
        start = time.perf_counter()
        await asyncio.gather(*(client(http, i) for i in range(clients)))
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(target.pid) - cpu if target.pid else 0.0
    return Result(tokens / elapsed, percentile(latencies, 50), percentile(latencies, 99),
                  percentile(firsts, 50) if stream else 0.0, len(latencies), cpu * 1000 / len(latencies))


async def replies(target: Target, questions: list[str], max_tokens: int) -> list[tuple[str, int, str]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        done = [await _one(http, target, q, max_tokens, False) for q in questions]
    return [(text, tokens, finish) for text, tokens, _, finish in done]


def check_outputs(targets: dict[str, Target], questions: list[str], max_tokens: int) -> dict[str, object]:
    """Greedy replies of the three to every prompt: how many match llama.cpp's, how they end."""
    got = {name: asyncio.run(replies(target, questions, max_tokens)) for name, target in targets.items()}
    peer = got["llama.cpp"]
    check: dict[str, object] = {"prompts": len(questions), "max_tokens": max_tokens}
    for name in ("llmops", "gw→llama"):
        check[f"{name} = llama.cpp"] = sum(a[0] == b[0] for a, b in zip(got[name], peer, strict=True))
    for name, answers in got.items():
        check[f"{name} mean tokens"] = round(statistics.mean(tokens for _, tokens, _ in answers), 1)
        check[f"{name} stopped"] = sum(finish == "stop" for _, _, finish in answers)
    return check


def measure(targets: dict[str, Target], questions: list[str], rounds: int) -> dict[str, dict[str, Result]]:
    """Every config × target, interleaved `rounds` times; the median (by tokens/s) of each."""
    runs: dict[str, dict[str, list[Result]]] = {}
    for _ in range(rounds):
        for clients, max_tokens, stream in CONFIGS:
            row = runs.setdefault(_label(clients, max_tokens, stream), {})
            wanted = questions * max(1, 2 * clients // len(questions) + 1) if clients > 1 else questions[:16]
            for name, target in targets.items():
                row.setdefault(name, []).append(asyncio.run(load(target, wanted, clients, max_tokens, stream)))
    return {label: {name: sorted(results, key=lambda r: r.tokens_per_s)[len(results) // 2]
                    for name, results in row.items()} for label, row in runs.items()}


def _label(clients: int, max_tokens: int, stream: bool) -> str:
    return f"{clients}{', streaming' if stream else ''} | {max_tokens}"


def render(medians: dict[str, dict[str, Result]], title: str) -> Table:
    table = Table(title=title)
    for column in ("clients | max_tokens", "llmops tok/s", "p50 ms", "p99 ms", "llama.cpp tok/s", "p50 ms",
                   "p99 ms", "gw→llama tok/s", "p50 ms", "p99 ms", "gw CPU ms/req", "llmops / llama.cpp",
                   "gw→llama / llama"):
        table.add_column(column, justify="right")
    for label, row in medians.items():
        cells = [label]
        for name in TARGETS:
            r = row[name]
            ttft = f" (TTFT {r.ttft_p50_ms:.1f})" if r.ttft_p50_ms else ""
            cells += [f"{r.tokens_per_s:,.0f}", f"{r.p50_ms:.0f}{ttft}", f"{r.p99_ms:.0f}"]
        peer = row["llama.cpp"].tokens_per_s
        cells += [f"{row['gw→llama'].cpu_ms_per_request:.2f}", f"{row['llmops'].tokens_per_s / peer:.2f}",
                  f"{row['gw→llama'].tokens_per_s / peer:.2f}"]
        table.add_row(*cells)
    return table


def run(args: argparse.Namespace, binary: Path, tmp: Path) -> dict[str, object]:
    model = chat_model(args)
    gguf = _llama_cpp.to_gguf(model, tmp)
    workspace = init_workspace(tmp / "ws")
    embedded = registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=str(model),
                                         path=str(model), merged=True)
    questions = user_prompts(args.prompts, seed=0, exclude=set())
    with llama_server(binary, gguf, args.threads, tmp / "llama-server.log") as llama_url:
        upstream = registry.register_version(workspace, kind="chat", stage="sft", parent=None,
                                             base_model=str(model), path="", merged=True, upstream_url=llama_url)
        overrides = ["serve.max_batch_size=32"]
        with GatewayProcess(workspace.root, tmp / "gateway.log", overrides) as gateway:
            targets = {"llmops": Target(gateway.url, embedded.name), "llama.cpp": Target(llama_url, "model"),
                       "gw→llama": Target(gateway.url, upstream.name, gateway.pid)}
            check = check_outputs(targets, questions, 128)
            console.print(f"outputs (greedy, {check['prompts']} prompts, max 128 tokens): {check}")
            medians = measure(targets, questions, args.rounds)
    title = (f"chat completions on {model.name} ({model}), greedy, over HTTP; {args.threads} thread(s) each; "
             f"medians of {args.rounds} interleaved rounds (load average {os.getloadavg()[0]:.1f}, "
             f"{os.cpu_count()} cores)")
    console.print(render(medians, title))
    return {"model": str(model), "threads": args.threads, "check": check,
            "results": {label: {name: asdict(r) for name, r in row.items()} for label, row in medians.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="merged HF chat model folder (default: the demo's chat-v1.0, built once)")
    parser.add_argument("--threads", type=int, default=1, help="threads of each server (torch's and llama.cpp -t)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows medians")
    parser.add_argument("--prompts", type=int, default=48, help="distinct benchmark prompts")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    binary = _llama_cpp.server_binary()
    if binary is None:
        raise SystemExit("llama-server: not found")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the gateway's torch threads, equal to llama.cpp's -t
    with tempfile.TemporaryDirectory(prefix="serve-peers-") as tmp:
        figures = run(args, binary, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
