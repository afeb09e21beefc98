"""The demo's report: PNG charts (loss curves, DPO reward accuracy, win rate with its interval, rollout
timelines with traffic share and guardrail metrics) and a Markdown page that ties them together."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from llmops.fileio import write_text_atomic
from llmops.loop.evaluate import Evaluation


@dataclass(frozen=True)
class TimelinePoint:
    """One look at a running rollout: seconds since it started, the candidate's share and its live metrics."""

    seconds: float
    traffic: float
    error_rate: float
    latency_p99_ms: float
    feedback_score: float | None
    action: str


@dataclass
class Scenario:
    title: str
    candidate: str
    outcome: str
    timeline: list[TimelinePoint] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def plot_losses(logs: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """Training loss against step, one line per stage (cpt, sft, dpo)."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for stage, entries in logs.items():
        points = [(e["current_steps"], e["loss"]) for e in entries if e.get("loss") is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=stage)
    ax.set(xlabel="step", ylabel="training loss", title="Loss per training stage")
    ax.legend()
    return _save(fig, path)


def plot_dpo_accuracy(entries: Sequence[dict[str, Any]], path: Path) -> Path:
    """DPO reward accuracy (chosen rewarded above rejected) against step."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    points = [(e["current_steps"], e["accuracy"]) for e in entries if e.get("accuracy") is not None]
    if points:
        ax.plot(*zip(*points, strict=True), marker=".", color="tab:purple")
    ax.set(xlabel="step", ylabel="reward accuracy", ylim=(0, 1.05), title="DPO reward accuracy")
    return _save(fig, path)


def plot_win_rate(evaluation: Evaluation, gate: float, path: Path) -> Path:
    """The candidate's win rate with its 95% bootstrap interval against the promotion gate."""
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    err = [[evaluation.win_rate - evaluation.ci_low], [evaluation.ci_high - evaluation.win_rate]]
    ax.bar([evaluation.new_model], [evaluation.win_rate], yerr=err, capsize=12, color="tab:green", width=0.5)
    ax.axhline(gate, color="tab:red", linestyle="--", label=f"gate: lower bound > {gate}")
    ax.set(ylim=(0, 1), ylabel=f"win rate over {evaluation.old_model}",
           title=f"{evaluation.comparisons} comparisons, 95% CI [{evaluation.ci_low:.3f}, {evaluation.ci_high:.3f}]")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_rollout(scenario: Scenario, limits: dict[str, float], path: Path) -> Path:
    """Traffic share, error rate and p99 latency of the candidate over the rollout, with the guardrails."""
    fig = Figure(figsize=(7, 7))
    axes = fig.subplots(3, 1, sharex=True)
    t = [p.seconds for p in scenario.timeline]
    series = [("candidate traffic", [p.traffic for p in scenario.timeline], None),
              ("error rate", [p.error_rate for p in scenario.timeline], limits["max_error_rate"]),
              ("p99 latency (ms)", [p.latency_p99_ms for p in scenario.timeline], limits["max_latency_p99_ms"])]
    for ax, (label, values, limit) in zip(axes, series, strict=True):
        ax.step(t, values, where="post", marker="o")
        if limit is not None:
            ax.axhline(limit, color="tab:red", linestyle="--", label="guardrail")
            ax.legend(loc="upper left")
        ax.set_ylabel(label)
    axes[0].set_title(f"{scenario.title}: {scenario.outcome}")
    axes[-1].set_xlabel("seconds since the rollout started")
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(path: Path, summary: Sequence[Sequence[str]], evaluation: Evaluation, gate: float,
                 scenarios: Sequence[Scenario], charts: dict[str, str], notes: Sequence[str]) -> Path:
    """The Markdown report beside its charts (chart paths relative to the report)."""
    parts = ["# llmops demo: the closed loop on a CPU", "", *notes, "", "## Summary", "",
             markdown_table(("step", "result", "seconds"), summary), "",
             "## Training", "", f"![loss curves]({charts['losses']})", "",
             f"![DPO reward accuracy]({charts['dpo_accuracy']})", "",
             "## Evaluation", "",
             markdown_table(("candidate", "baseline", "judge", "win rate", "95% CI", "comparisons", "gate"),
                            [(evaluation.new_model, evaluation.old_model, evaluation.judge,
                              f"{evaluation.win_rate:.3f}", f"[{evaluation.ci_low:.3f}, {evaluation.ci_high:.3f}]",
                              str(evaluation.comparisons), "passed" if evaluation.passes(gate) else "failed")]),
             "", f"Rubric met by {evaluation.new_model}: {evaluation.avg_score:.1%} of sampled answers; by "
             f"{evaluation.old_model}: {evaluation.avg_score_old:.1%}.", "",
             f"![win rate]({charts['win_rate']})", "", "## Rollouts", ""]
    for index, scenario in enumerate(scenarios):
        parts += [f"### {scenario.title}: {scenario.outcome}", "", f"![rollout]({charts[f'rollout_{index}']})", "",
                  markdown_table(("event", "traffic", "evidence"),
                                 [(e["event"], f"{e['traffic']:.0%}", _evidence(e["evidence"]))
                                  for e in scenario.events]), ""]
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path


def _evidence(evidence: dict[str, Any]) -> str:
    shown: dict[str, Any] = {key: evidence[key] for key in ("reason", "breaches") if key in evidence}
    candidate = evidence.get("candidate")
    if isinstance(candidate, dict):
        shown["candidate"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in candidate.items()}
    return str(shown) if shown else ""
