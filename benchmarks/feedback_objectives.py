"""What does learning from every vote buy? DPO on the arena's pairs vs KTO on every signal vs KTO on the pairs only.

The demo's own path builds chat-v1.0 (its base, CPT, Self-Instruct and full SFT, `llmops.demo.run`) and its
held-out prompts; the demo's simulated users (hidden rubric, 5% noise, seed 0) then fight arena battles through
the HTTP gateway and give thumbs up/down (`/v1/feedback`) on as many ordinary chat completions. On those same
signals, three candidates are trained from chat-v1.0 with the product's pipeline (`train_dpo`, `train_kto`, the
demo's `train.dpo` recipe and the loop's `loop.dpo_overrides`):

- DPO on the valid pairs (`export_preferences`: the a/b votes),
- KTO on every signal (`export_kto`: a/b → desirable + undesirable, both_bad → two undesirable, thumbs),
- KTO on the pairs only (the KTO examples of the a/b votes),

and each is evaluated against chat-v1.0 on the held-out prompts by the demo's judge (the users' rubric, 4 samples
a prompt, win rate with its bootstrap 95% interval). It runs at each `--battles` count; the smaller set is the
first part of the larger one (chat-v1.0 is built once; the battles and chats go on where they stopped).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/feedback_objectives.py [--battles 500 150] [--json PATH]
"""

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmops.data.eval_sets import without_held_out
from llmops.data.kto import KTOStats, export_kto, kto_examples, signals_since
from llmops.data.preferences import export_preferences
from llmops.data.registry import get_dataset, publish_dataset
from llmops.demo.base_model import ensure_base_model
from llmops.demo.run import DemoConfig, Summary, arena_and_heldout, offline_training, prepare_workspace
from llmops.demo.simulated_users import RubricJudge, SimulatedUsers
from llmops.demo.traffic import run_arena, send_traffic
from llmops.inference.engine import InferenceModel
from llmops.loop.answers import EngineAnswers
from llmops.loop.evaluate import EvalItem, Evaluation, evaluate_model_improvement
from llmops.models.registry import ModelVersion
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer
from llmops.train.pipeline import train_dpo, train_kto
from llmops.votes import Vote
from llmops.workspace import Workspace

Train = Callable[[Workspace, str, str, list[str]], ModelVersion]


@dataclass(frozen=True)
class Row:
    """One candidate: what it was trained on, how long that took and how it fared against the parent."""

    battles: int
    objective: str
    examples: str
    used_signals: int
    signals: int
    train_s: float
    evaluation: Evaluation

    @property
    def share(self) -> float:
        return self.used_signals / self.signals if self.signals else 0.0


@dataclass(frozen=True)
class Candidate:
    objective: str
    train: Train
    dataset: str
    examples: str
    used_signals: int


def kto_counts(stats: KTOStats) -> str:
    return f"{stats.examples} ({stats.desirable} desirable, {stats.undesirable} undesirable)"


def table(rows: Sequence[Row], parent: str) -> str:
    """The rows side by side: examples, share of the signals (votes + thumbs) used, training time, win rate."""
    header = ("battles", "objective", "examples used", "signals used (of votes + thumbs)", "train s",
              f"win rate vs {parent} [95% CI]")
    cells = [header, *[(str(r.battles), r.objective, r.examples, f"{r.used_signals} / {r.signals} ({r.share:.1%})",
                        f"{r.train_s:.0f}", f"{r.evaluation.win_rate:.3f} [{r.evaluation.ci_low:.3f}, "
                        f"{r.evaluation.ci_high:.3f}]") for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    right = (True, False, False, False, True, False)
    return "\n".join("  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right,
                                                                                        strict=True)).rstrip()
                     for row in cells)


def collect(url: str, prompts: Sequence[str], users: SimulatedUsers, demo: DemoConfig, first_user: int) -> str:
    """One arena battle per prompt and one chat with a thumb per prompt, through the gateway."""
    votes = run_arena(url, prompts, users, demo.sampling, concurrency=16)
    chats = send_traffic(url, prompts, users, demo.sampling, len(prompts), first_user, concurrency=8)
    return f"{len(prompts)} battles {dict(sorted(votes.items()))}, {chats.requests} chats ({chats.errors} failed)"


def candidates(ws: Workspace, since: float, battles: int) -> tuple[list[Candidate], int]:
    """The three datasets of the signals after `since`, registered, and the count of those signals."""
    pairs = export_preferences(ws, since)
    every = export_kto(ws, since)
    decisive = [s for s in signals_since(ws, since) if s.source == "vote" and Vote(s.kind).decisive]
    stats, examples = kto_examples(decisive, ws.settings.data.max_votes_per_user_per_day)
    examples = without_held_out(ws, examples, "messages")
    only_pairs = publish_dataset(ws, f"kto_pairs_{battles}", ws.stage_data_dir("kto") / f"kto_pairs_{battles}.jsonl",
                                 examples, "kto", "kto")
    desirable = sum(1 for e in examples if e["kto_tag"])
    pair_rows = get_dataset(ws, pairs.path.stem).rows
    return [
        Candidate("DPO on pairs", train_dpo, pairs.path.stem, f"{pair_rows} pairs", pair_rows),
        Candidate("KTO on every signal", train_kto, every.path.stem, kto_counts(every.stats), every.stats.used_signals),
        Candidate("KTO on pairs only", train_kto, only_pairs.name,
                  kto_counts(KTOStats(desirable=desirable, undesirable=len(examples) - desirable)),
                  stats.used_signals),
    ], every.stats.signals


def compare(ws: Workspace, parent: str, since: float, battles: int, judge: RubricJudge,
            items: list[EvalItem]) -> list[Row]:
    """Train each candidate from `parent` and evaluate it against `parent` on `items`."""
    found, signals = candidates(ws, since, battles)
    rows = []
    for c in found:
        started = time.perf_counter()
        version = c.train(ws, c.dataset, parent, list(ws.settings.loop.dpo_overrides))
        seconds = time.perf_counter() - started
        evaluation = evaluate_model_improvement(parent, version.name, items, judge, ws.settings.loop.bootstrap_samples)
        rows.append(Row(battles, c.objective, c.examples, c.used_signals, signals, seconds, evaluation))
        print(f"{battles} battles, {c.objective}: {version.name} trained in {seconds:.0f} s, win rate "
              f"{evaluation.win_rate:.3f} [{evaluation.ci_low:.3f}, {evaluation.ci_high:.3f}]", flush=True)
    return rows


def run(demo: DemoConfig, counts: Sequence[int]) -> tuple[str, list[Row]]:
    """chat-v1.0 once, then the signals and the three candidates at each battle count (smallest first)."""
    ws = prepare_workspace(demo, ensure_base_model(demo.cache_dir), replace=False)
    chat, sft_path = offline_training(ws, demo, Summary())
    split = arena_and_heldout(ws, demo, sft_path)
    items = [EvalItem(prompt) for prompt in split.heldout]
    users = SimulatedUsers(noise=demo.noise, seed=demo.seed)
    engine = InferenceModel(max_batch_size=32)
    rows: list[Row] = []
    try:
        judge = RubricJudge(EngineAnswers(ws, demo.sampling, engine=engine), samples_per_prompt=demo.eval_samples)
        with BackgroundServer(create_app(ws, engine=engine)) as gateway:
            since, done = time.time(), 0
            for battles in sorted(counts):
                print(collect(gateway.url, split.arena[done:battles], users, demo, done), flush=True)
                done = battles
                rows += compare(ws, chat.name, since, battles, judge, items)
    finally:
        engine.close()
    order = {battles: index for index, battles in enumerate(counts)}
    return chat.name, sorted(rows, key=lambda r: order[r.battles])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--battles", type=int, nargs="+", default=[500, 150], help="Arena battle counts.")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "llmops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON to this file.")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llmops-feedback-objectives-") as tmp:
        demo = DemoConfig(workspace=Path(tmp) / "ws", cache_dir=args.cache_dir, seed=args.seed,
                          arena_prompts=max(args.battles))
        parent, rows = run(demo, args.battles)
    wall_s = time.perf_counter() - started
    print(table(rows, parent))
    print(f"benchmark wall time {wall_s:.0f} s; judge: the simulated users' rubric, {demo.eval_samples} samples of "
          f"each of {demo.heldout_prompts} held-out prompts; thumbs from one chat per battle")
    if args.json:
        figures: dict[str, Any] = {"parent": parent, "wall_s": wall_s,
                                   "rows": [{**asdict(r), "share": r.share} for r in rows]}
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
