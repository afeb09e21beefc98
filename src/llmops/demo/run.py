"""`llmops demo`: the whole loop, for real, on a CPU (DESIGN.md's "Facts measured" are the recipe).

tiny base (cached) → preset documents → CPT (LoRA, merged: completion-v1.0) → Self-Instruct → full SFT
(chat-v1.0, production), then the loop turns twice: simulated users vote in the arena through the HTTP gateway
on production's answers (two samples of it: on-policy pairs) → trigger (new pairs since the last DPO version) →
DPO on those pairs with an SFT term on the chosen answers, parent and reference production (chat-v1.1, then
chat-v1.2 from chat-v1.1) → evaluation against production on held-out prompts by the users' hidden rubric →
canary 5/20/50/100 with simulated traffic → promote. Then a deliberately broken candidate (an upstream
failing a share of its requests, chat-v1.3) is rolled back in its first stage. A Markdown report with PNG
charts goes to `reports/demo/`, and a summary table is printed.
"""

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmops.data.corpus import build_corpus
from llmops.data.eval_sets import publish_eval_set
from llmops.data.self_instruct import generate_sft_dataset
from llmops.demo import online
from llmops.demo import prompts as demo_prompts
from llmops.demo.base_model import ensure_base_model
from llmops.demo.preset import load_products, preset_documents
from llmops.demo.report import (
    LoopRound,
    Scenario,
    plot_dpo_accuracy,
    plot_losses,
    plot_rollout,
    plot_win_rate,
    write_report,
)
from llmops.demo.simulated_users import RubricJudge, SimulatedUsers
from llmops.demo.templates import shop_templates
from llmops.errors import LLMOpsError
from llmops.inference.engine import InferenceModel
from llmops.inference.types import Sampling
from llmops.loop.answers import EngineAnswers
from llmops.models import registry, rollouts
from llmops.models.registry import ModelVersion
from llmops.serve.gateway import create_app
from llmops.serve.server import BackgroundServer
from llmops.settings import Settings, apply_overrides, parse_settings, read_settings_file, save_settings
from llmops.train.pipeline import train_cpt, train_sft
from llmops.train.progress import read_trainer_log
from llmops.train.runs import RunStatus, read_run
from llmops.workspace import Workspace, init_workspace, open_workspace

console = Console()

RECIPE = Path(__file__).with_name("settings.yaml")  # the measured training recipe: train.cpt, train.sft, train.dpo


DEMO_SAMPLING = Sampling(max_tokens=96, temperature=1.0, top_p=0.9, top_k=0, repetition_penalty=1.0)


@dataclass(frozen=True)
class DemoConfig:
    workspace: Path
    cache_dir: Path
    arena_prompts: int = 500
    heldout_prompts: int = 150
    eval_samples: int = 4
    sft_examples: int = 1200
    noise: float = 0.05
    seed: int = 0
    stage_min_requests: int = 40
    loop_rounds: int = 2
    first_battles: int = 300  # arena battles before the first look at the trigger, then `battle_step` more a look
    battle_step: int = 100
    later_battles: int = 200  # the same in later rounds
    later_battle_step: int = 50
    broken_error_rate: float = 0.2
    max_latency_p99_ms: float = 10000.0  # a tiny model batching on a shared 2-core CPU; the product default is 2 s
    sampling: Sampling = DEMO_SAMPLING
    overrides: tuple[str, ...] = ()  # `key.sub=value` settings on top of the demo's own (`llmops demo --set`)


@dataclass
class Summary:
    """Rows of the final table: step, result, seconds."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        console.rule(f"[bold]{name}")
        result: list[str] = []
        started = time.monotonic()
        yield result
        self.rows.append((name, "; ".join(result), f"{time.monotonic() - started:.0f}"))
        console.print(f"[green]✓[/green] {name}: {'; '.join(result)}", highlight=False)


def demo_settings(base: Path, config: DemoConfig) -> Settings:
    """The demo's settings (its training recipe from `RECIPE`), saved as the workspace's llmops.yaml so
    `llmops train …` and `llmops loop …` behave the same later."""
    s = config.sampling
    return parse_settings(apply_overrides({
        "data": {"tokenizer": str(base), "chunk_size": 128, "system_prompt": ""},
        "train": {**read_settings_file(RECIPE)["train"], "base_model": str(base)},
        "serve": {"max_new_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p,
                  "top_k": s.top_k, "repetition_penalty": s.repetition_penalty, "max_batch_size": 32},
        "loop": {"min_samples": 100, "days_threshold": 0, "rollout_stages": [
                     {"traffic": share, "min_hours": 0, "min_requests": config.stage_min_requests}
                     for share in (0.05, 0.2, 0.5, 1.0)],
                 "guardrail_min_requests": 10, "eval_samples": config.eval_samples,
                 "max_latency_p99_ms": config.max_latency_p99_ms},
        "auth": {"open_arena": True},  # the simulated users vote as the public would, without signing in
    }, list(config.overrides)), str(RECIPE))


def training_progress() -> tuple[Progress, Callable[[str, RunStatus], None]]:
    """A rich progress bar and the pipeline callback that moves it."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), console=console)
    tasks: dict[str, Any] = {}

    def update(label: str, status: RunStatus) -> None:
        if label not in tasks:
            tasks[label] = bar.add_task(f"{label} training", total=None, loss="-")
        p = status.progress
        if p is not None:
            loss = "-" if p.loss is None else f"{p.loss:.3f}"
            bar.update(tasks[label], completed=p.step, total=p.total or None, loss=loss)

    return bar, update


def _loss(version: ModelVersion) -> str:
    """The version's final train loss for people (3 decimals), '?' when its run reported none."""
    loss = version.metrics.get("train_loss")
    return f"{loss:.3f}" if isinstance(loss, int | float) else "?"


def offline_training(ws: Workspace, config: DemoConfig, summary: Summary) -> tuple[ModelVersion, Path]:
    """Preset documents → CPT → Self-Instruct → full SFT; chat v1.0 becomes production."""
    base = ws.settings.train.base_model
    with summary.step("CPT corpus from the preset documents") as out:
        corpus = build_corpus(ws, preset_documents())
        out.append(f"{corpus.dataset.rows} chunks → {corpus.path.name}")
    bar, on_progress = training_progress()
    with bar:
        with summary.step("CPT (LoRA) → completion-v1.0") as out:
            completion = train_cpt(ws, corpus.dataset.name, base, on_progress=on_progress)
            out.append(f"{completion.name}, train loss {_loss(completion)}")
        with summary.step("Self-Instruct (template mode)") as out:
            sft = generate_sft_dataset(ws, config.sft_examples, use_mock=True, documents=preset_documents(),
                                       templates=shop_templates(load_products()), closing_rate=0.15, seed=config.seed)
            out.append(f"{sft.dataset.rows} examples → {sft.path.name}")
        with summary.step("SFT (full fine-tune) → chat-v1.0") as out:
            chat = train_sft(ws, sft.dataset.name, completion.name, on_progress=on_progress)
            rollouts.promote(ws, chat.name, by="demo", reason="demo: first chat model")
            out.append(f"{chat.name} in production, train loss {_loss(chat)}")
    return chat, sft.path


def _replaces_workspace(root: Path, replace: bool) -> bool:
    """Whether an earlier demo workspace at `root` is to be replaced; LLMOpsError when it may not be."""
    if root.exists() and not root.is_dir():
        raise LLMOpsError(f"{root}: exists and is not a folder")
    if not (root.exists() and any(root.iterdir())):
        return False
    if not replace:
        raise LLMOpsError(f"{root}: exists and is not empty (pass --replace to start the demo over)")
    if not (root / "llmops.yaml").is_file():
        raise LLMOpsError(f"{root}: not an llmops workspace; refusing to replace it")
    return True


def prepare_workspace(config: DemoConfig, base: Path, replace: bool) -> Workspace:
    """A fresh workspace with the demo's settings; an existing one is replaced only when asked."""
    root = config.workspace.expanduser().resolve()
    if _replaces_workspace(root, replace):
        shutil.rmtree(root)
    ws = init_workspace(root)
    save_settings(demo_settings(base, config), ws.settings_path)
    return open_workspace(root)


def _trainer_log(ws: Workspace, output_dir: str) -> list[dict[str, Any]]:
    path = Path(output_dir)
    return read_trainer_log(path if path.is_absolute() else ws.root / path)


def write_demo_report(ws: Workspace, summary: Summary, run: "OnlineRun", chat: ModelVersion,
                      notes: list[str]) -> Path:
    """Charts and the Markdown report under reports/demo/."""
    folder = ws.reports_dir / "demo"
    cpt_run = read_run(ws, registry.get_version(ws, chat.parent or "").run_id or "", with_progress=False)
    dpo = {f"dpo → {r.evaluation.new_model}": _trainer_log(ws, registry.get_version(ws, r.evaluation.new_model).path)
           for r in run.rounds}
    logs = {"cpt": _trainer_log(ws, cpt_run.output_dir), "sft": _trainer_log(ws, chat.path), **dpo}
    loop = ws.settings.loop
    limits = {"max_error_rate": loop.max_error_rate, "max_latency_p99_ms": loop.max_latency_p99_ms}
    charts = {"losses": plot_losses(logs, folder / "losses.png"),
              "dpo_accuracy": plot_dpo_accuracy(dpo, folder / "dpo_reward_accuracy.png"),
              "win_rate": plot_win_rate([r.evaluation for r in run.rounds], loop.gate_lower_bound,
                                        folder / "win_rate.png")}
    for index, scenario in enumerate(run.scenarios):
        charts[f"rollout_{index}"] = plot_rollout(scenario, limits, folder / f"rollout_{index + 1}.png")
    return write_report(folder / "report.md", summary.rows, run.rounds, loop.gate_lower_bound, run.scenarios,
                        {key: path.name for key, path in charts.items()}, notes)


def print_summary(summary: Summary, report: Path, seconds: float) -> None:
    table = Table(title=f"llmops demo — {seconds / 60:.1f} min — report: {report}")
    for column in ("step", "result", "s"):
        table.add_column(column, overflow="fold")
    for row in summary.rows:
        table.add_row(*row)
    console.print(table)


@dataclass
class OnlineRun:
    """What the online half gives the report: the turns of the loop and the rollouts."""

    rounds: list[LoopRound] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    next_user: int = 0


def loop_round(ws: Workspace, config: DemoConfig, context: tuple[str, list[str], SimulatedUsers],
               judge: RubricJudge, summary: Summary, run: OnlineRun) -> None:
    """One turn of the loop through the gateway: votes on production's answers → trigger → DPO (parent and
    reference: production) → evaluation against production → canary 5/20/50/100 → promote."""
    url, prompts, users = context
    number = len(run.rounds) + 1
    first, step = (config.first_battles, config.battle_step) if number == 1 else (config.later_battles,
                                                                                   config.later_battle_step)
    production = registry.resolve(ws, "production").name
    with summary.step(f"Round {number}: simulated users vote on {production} (HTTP gateway)") as out:
        battles, voted = online.collect_votes(ws, url, prompts, users, config.sampling, console, first, step)
        out.append(voted)
    with summary.step(f"Round {number}: trigger") as out:
        decision, fired = online.trigger_report(ws)
        out.append(fired)
    bar, on_progress = training_progress()
    with summary.step(f"Round {number}: DPO on {production} → candidate, evaluation, gate") as out, bar:
        result, evaluation = online.dpo_tick(ws, judge, on_progress)
        out.append(f"{evaluation.new_model}: win rate {evaluation.win_rate:.3f} over {evaluation.old_model}, 95% CI "
                   f"[{evaluation.ci_low:.3f}, {evaluation.ci_high:.3f}], {evaluation.comparisons} comparisons "
                   f"→ {result.action}")
    outcome = result.action.removeprefix("rollout_").replace("_", " ")
    if result.action == "rollout_started":
        with summary.step(f"Round {number}: canary 5/20/50/100 with simulated traffic") as out:
            scenario, run.next_user = online.drive_rollout(ws, url, prompts, users, config.sampling,
                                                           f"Canary of {evaluation.new_model}", run.next_user,
                                                           console.print)
            run.scenarios.append(scenario)
            outcome = scenario.outcome
            out.append(f"{scenario.candidate}: {outcome}")
    run.rounds.append(online.round_record(ws, number, battles, decision, result, outcome))


def broken_candidate(ws: Workspace, config: DemoConfig, context: tuple[str, list[str], SimulatedUsers],
                     engine: InferenceModel, summary: Summary, run: OnlineRun) -> None:
    """A candidate behind an upstream failing a share of its requests: rolled back in its first stage."""
    url, prompts, users = context
    with summary.step("Broken candidate (failing upstream)") as out:
        server, broken = online.start_broken_candidate(ws, engine, config.broken_error_rate)
        try:
            scenario, run.next_user = online.drive_rollout(ws, url, prompts, users, config.sampling,
                                                           "Broken candidate", run.next_user, console.print)
            run.scenarios.append(scenario)
            out.append(f"{broken.name}: {scenario.outcome} at stage 1 ({_breached(scenario)})")
            out.append(online.traffic_after_rollback(url, prompts, users, config.sampling, run.next_user,
                                                     broken.name))
        finally:
            server.stop()


def online_loop(ws: Workspace, config: DemoConfig, split: demo_prompts.PromptSplit, summary: Summary,
                engine: InferenceModel) -> OnlineRun:
    """The loop turned up to `config.loop_rounds` times (while each candidate is promoted); then the broken
    candidate's rollback."""
    users = SimulatedUsers(noise=config.noise, seed=config.seed)
    judge = RubricJudge(EngineAnswers(ws, config.sampling, engine=engine), samples_per_prompt=config.eval_samples)
    run = OnlineRun()
    with BackgroundServer(create_app(ws, engine=engine)) as gateway:
        context = (gateway.url, split.arena, users)
        for _ in range(config.loop_rounds):
            loop_round(ws, config, context, judge, summary, run)
            if run.rounds[-1].outcome != "promoted":
                break  # the report shows where the loop stopped
        broken_candidate(ws, config, context, engine, summary, run)
    return run


def _breached(scenario: Scenario) -> str:
    last = scenario.events[-1]["evidence"] if scenario.events else {}
    return ", ".join(b["metric"] for b in last.get("breaches", [])) or "no guardrail breached"


def arena_and_heldout(ws: Workspace, config: DemoConfig, sft_path: Path) -> demo_prompts.PromptSplit:
    """The arena's and the held-out prompts (seeded, in no training set); the held-out ones become the workspace's
    evaluation set."""
    split = demo_prompts.split_prompts(config.arena_prompts, config.heldout_prompts, config.seed + 7,
                                       demo_prompts.training_prompts(sft_path))
    publish_eval_set(ws, [{"prompt": prompt} for prompt in split.heldout], "demo")
    return split


def run_demo(config: DemoConfig, replace: bool = False) -> Path:
    """The whole demo; returns the report's path."""
    started = time.monotonic()
    _replaces_workspace(config.workspace.expanduser().resolve(), replace)  # refused before the base is built
    demo_settings(config.cache_dir, config)  # so are bad `--set` overrides
    summary = Summary()
    with summary.step("Tiny base model (built once, then reused)") as out:
        base = ensure_base_model(config.cache_dir)
        out.append(str(base))
    ws = prepare_workspace(config, base, replace)
    chat, sft_path = offline_training(ws, config, summary)
    with summary.step("Arena and held-out prompts") as out:
        split = arena_and_heldout(ws, config, sft_path)
        out.append(f"{len(split.arena)} arena prompts, {len(split.heldout)} held out (in no training set)")
    engine = InferenceModel(max_batch_size=32)
    try:
        run = online_loop(ws, config, split, summary, engine)
    finally:
        engine.close()
    notes = [f"Workspace: `{ws.root}`. Hidden rubric of the simulated users: the answer ends with a polite "
             f"closing phrase (noise {config.noise:.0%}); no training code sees it. Each round's battles pit "
             f"production against itself (two samples), so its pairs are on-policy for the DPO run that starts "
             f"from production and uses it as the reference; that run trains on the round's new votes only.",
             f"Sampling: temperature {config.sampling.temperature}, top_p {config.sampling.top_p}; evaluation on "
             f"{config.heldout_prompts} held-out prompts × {config.eval_samples} samples per model.",
             f"Guardrails: error rate > {ws.settings.loop.max_error_rate:.0%}, p99 latency > "
             f"{ws.settings.loop.max_latency_p99_ms:.0f} ms (raised from the spec's 2000 ms: on this CPU the batched "
             f"tiny model answers slowly for every version alike), thumbs-up share "
             f"{ws.settings.loop.max_feedback_drop:.0%} below production's."]
    report = write_demo_report(ws, summary, run, chat, notes)
    print_summary(summary, report, time.monotonic() - started)
    return report
