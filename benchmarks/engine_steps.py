"""The embedded engine alone, in process (no HTTP, no gateway): greedy chat replies per second at 1 and 32 clients.

Loads a chat model into `InferenceModel`, renders the demo's shop questions with its chat template and decodes
them greedily (temperature 0, the serving defaults otherwise: repetition penalty 1.1), `--clients` threads each
sending its share of the questions one after another; tokens/s is completion tokens over wall time, the median
of `--rounds` rounds. Isolates the decode loop's per-token cost from what the gateway adds (serve_peers.py).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/engine_steps.py [--model PATH]
"""

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from rich.console import Console

from llmops.demo.prompts import user_prompts
from llmops.inference.engine import GenerationRequest, InferenceModel
from llmops.inference.types import Sampling
from serve_peers import chat_model  # benchmarks/ is this script's folder, so on sys.path


def one_round(engine: InferenceModel, prompts: list[str], clients: int, max_tokens: int) -> float:
    """Tokens per second of `clients` threads decoding `prompts` (split between them)."""
    sampling = Sampling(max_tokens=max_tokens, temperature=0.0)

    def client(index: int) -> int:
        return sum(engine.generate_batch([GenerationRequest("chat", prompt, sampling)])[0].completion_tokens
                   for prompt in prompts[index::clients])

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        tokens = sum(pool.map(client, range(clients)))
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a merged HF chat model folder (default: serve_peers.py's chat-v1.0, "
                        "trained once into the llmops cache)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    engine = InferenceModel(max_batch_size=32)
    engine.load_model("chat", str(chat_model(args)))
    questions = user_prompts(48, seed=0, exclude=set())
    prompts = [engine.render_chat("chat", [{"role": "user", "content": q}]) for q in questions]
    one_round(engine, prompts[:4], 1, args.max_tokens)  # warm-up
    setups = {1: prompts[:16], 32: prompts * 2}
    results: dict[int, list[float]] = {clients: [] for clients in setups}
    for _ in range(args.rounds):
        for clients, wanted in setups.items():
            results[clients].append(one_round(engine, wanted, clients, args.max_tokens))
    engine.close()
    for clients, rates in results.items():
        rounded = ", ".join(f"{rate:.0f}" for rate in rates)
        Console().print(f"{clients} client(s): median {statistics.median(rates):.0f} tok/s ({rounded})")


if __name__ == "__main__":
    main()
