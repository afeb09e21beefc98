"""Overhead of llmops' runner: the same YAML through LLaMAFactoryTrainer and through `llamafactory-cli train`.

Builds a tiny Qwen2 base in a temp dir, writes one CPT config with `write_config`, then runs it
alternately (a) directly as `llamafactory-cli train X.yaml` and (b) with `LLaMAFactoryTrainer.start_training`
+ `wait` (supervisor process, database rows, progress polling). Prints wall times side by side and the ratio.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_overhead.py --repeats 2 --steps 20
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from llmops.data.registry import register_dataset
from llmops.demo.base_model import BaseModelSpec, build_base_model
from llmops.train.configs import create_cpt_config, write_config
from llmops.train.runner import LLaMAFactoryTrainer, llamafactory_command
from llmops.workspace import Workspace, init_workspace

SPEC = replace(BaseModelSpec(), vocab_size=1200, hidden_size=64, num_layers=2, intermediate_size=192,
               max_position_embeddings=512, block_size=64, batch_size=8, steps=30, warmup_steps=5)


def prepare(root: Path, steps: int) -> tuple[Workspace, Path]:
    texts = [f"Item {i} costs {10 * i} yuan and ships within {i % 5 + 1} days. Thank you!" for i in range(200)]
    build_base_model(root / "base", texts, SPEC)
    workspace = init_workspace(root / "ws")
    corpus = workspace.data_dir / "cpt" / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    register_dataset(workspace, "corpus", corpus, "pt", "text")
    config = create_cpt_config(model_name=str(root / "base"), dataset="corpus", output_dir="checkpoints/cpt/bench")
    overrides = [f"max_steps={steps}", "logging_steps=5", "per_device_train_batch_size=4",
                 "gradient_accumulation_steps=1", "warmup_steps=0", "cutoff_len=64", "save_steps=100000"]
    return workspace, write_config(workspace, config, overrides).path


def run_direct(workspace: Workspace, config: Path, log: Path) -> float:
    start = time.perf_counter()
    with log.open("wb") as out:
        code = subprocess.call([llamafactory_command(workspace), "train", str(config)], stdout=out,
                               stderr=subprocess.STDOUT, env=dict(os.environ))
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"llamafactory-cli failed (exit {code}), see {log}")
    return elapsed


def run_llmops(workspace: Workspace, config: Path) -> float:
    start = time.perf_counter()
    trainer = LLaMAFactoryTrainer(workspace)
    status = trainer.wait(trainer.start_training(config), poll_s=0.5)
    elapsed = time.perf_counter() - start
    if status.status != "succeeded":
        raise SystemExit(f"llmops run failed: {status.error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each kind (alternating).")
    parser.add_argument("--steps", type=int, default=20, help="Training steps per run.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmops-train-bench-") as tmp:
        workspace, config = prepare(Path(tmp), args.steps)
        direct, through = [], []
        for index in range(args.repeats):
            direct.append(run_direct(workspace, config, Path(tmp) / f"direct-{index}.log"))
            through.append(run_llmops(workspace, config))
            print(f"run {index + 1}: llamafactory-cli {direct[-1]:.2f} s · llmops {through[-1]:.2f} s", flush=True)
    d, t = statistics.median(direct), statistics.median(through)
    print(f"{'':16}{'median s':>10}")
    print(f"{'llamafactory-cli':16}{d:>10.2f}")
    print(f"{'llmops runner':16}{t:>10.2f}")
    print(f"ratio llmops / direct = {t / d:.3f} (overhead {t - d:+.2f} s)")


if __name__ == "__main__":
    main()
