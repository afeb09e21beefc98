"""The demo's report: PNG charts (loss curves, DPO reward accuracy, win rates with their intervals, rollout
timelines with traffic share and guardrail metrics) and a Markdown page that ties them together, one row per
turn of the loop (the votes it collected, the share of them the training used, its evaluation and rollout)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from llmops.fileio import write_text_atomic
from llmops.loop.evaluate import Evaluation
from llmops.models.rollouts import EVIDENCE_GUARDRAILS, evidence_columns

EVIDENCE_SHOWN = ("reason", *EVIDENCE_GUARDRAILS, "breaches")  # the rollout tables' columns after event, traffic


@dataclass(frozen=True)
class TimelinePoint:
    """One look at a running rollout: seconds since it started, the candidate's share and its live metrics."""

    seconds: float
    traffic: float
    error_rate: float
    latency_p99_ms: float
    feedback_score: float | None
    action: str


@dataclass(frozen=True)
class LoopRound:
    """One turn of the loop: the votes the trigger counted since the last DPO version (for KTO: votes and thumbs),
    the pairs the trained dataset holds, the candidate's evaluation against production and how its rollout ended."""

    number: int
    battles: int
    votes: int
    pairs: int
    ties: int
    both_bad: int
    evaluation: Evaluation
    outcome: str
    objective: str = "dpo"  # dpo: `pairs` counts preference pairs; kto: KTO examples
    used: int | None = None  # votes (thumbs) that gave training data; None: one per pair (DPO)

    @property
    def votes_used(self) -> int:
        return self.pairs if self.used is None else self.used

    @property
    def share_used(self) -> float:
        """The share of the votes that gave training data (a KTO vote gives two examples: not `pairs / votes`)."""
        return self.votes_used / self.votes if self.votes else 0.0

    @property
    def other_dropped(self) -> int:
        """Votes neither used nor a tie, nor a both_bad left out by DPO (identical, empty, duplicate or capped)."""
        return self.votes - self.votes_used - self.ties - (self.both_bad if self.objective == "dpo" else 0)


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


def plot_dpo_accuracy(logs: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """DPO reward accuracy (chosen rewarded above rejected) against step, one line per DPO run."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for label, entries in logs.items():
        points = [(e["current_steps"], e["accuracy"]) for e in entries if e.get("accuracy") is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=label)
    ax.set(xlabel="step", ylabel="reward accuracy", ylim=(0, 1.05), title="DPO reward accuracy")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_win_rate(evaluations: Sequence[Evaluation], gate: float, path: Path) -> Path:
    """Each candidate's win rate over its baseline with its 95% bootstrap interval, against the promotion gate."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    labels = [f"{e.new_model}\nover {e.old_model}" for e in evaluations]
    err = [[e.win_rate - e.ci_low for e in evaluations], [e.ci_high - e.win_rate for e in evaluations]]
    ax.bar(labels, [e.win_rate for e in evaluations], yerr=err, capsize=12, color="tab:green", width=0.5)
    ax.axhline(gate, color="tab:red", linestyle="--", label=f"gate: lower bound > {gate}")
    ax.set(ylim=(0, 1), ylabel="win rate (95% CI)", title="Candidates against production, held-out prompts")
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


def used_heading(objectives: set[str]) -> str:
    """The heading of the examples the rounds trained on: pairs (DPO), KTO examples, or both."""
    if objectives <= {"dpo"}:
        return "pairs used"
    return "KTO examples used" if objectives == {"kto"} else "examples used (DPO: pairs, KTO: KTO examples)"


def rounds_tables(rounds: Sequence[LoopRound], gate: float) -> list[str]:
    """The votes of each turn of the loop and the share used for training, then each candidate's evaluation."""
    objectives = {r.objective for r in rounds}
    mixed = len(objectives) > 1
    votes = markdown_table(
        ("round", "battles", "votes", used_heading(objectives), "share used", "ties", "both_bad", "other left out"),
        [(str(r.number), str(r.battles), str(r.votes), f"{r.pairs} ({r.objective})" if mixed else str(r.pairs),
          f"{r.share_used:.1%}", str(r.ties), str(r.both_bad), str(r.other_dropped)) for r in rounds])
    evaluations = markdown_table(
        ("round", "candidate", "baseline", "judge", "win rate", "95% CI", "comparisons", "gate", "rollout"),
        [(str(r.number), r.evaluation.new_model, r.evaluation.old_model, r.evaluation.judge,
          f"{r.evaluation.win_rate:.3f}", f"[{r.evaluation.ci_low:.3f}, {r.evaluation.ci_high:.3f}]",
          str(r.evaluation.comparisons), "passed" if r.evaluation.passes(gate) else "failed", r.outcome)
         for r in rounds])
    met = [f"Rubric met in round {r.number} by {r.evaluation.new_model}: {r.evaluation.avg_score:.1%} of sampled "
           f"answers; by {r.evaluation.old_model}: {r.evaluation.avg_score_old:.1%}." for r in rounds]
    return ["## Votes per round", "", votes, "", "## Evaluation", "", evaluations, "", *met]


def write_report(path: Path, summary: Sequence[Sequence[str]], rounds: Sequence[LoopRound], gate: float,
                 scenarios: Sequence[Scenario], charts: dict[str, str], notes: Sequence[str]) -> Path:
    """The Markdown report beside its charts (chart paths relative to the report)."""
    parts = ["# llmops demo: the closed loop on a CPU", "", *notes, "", "## Summary", "",
             markdown_table(("step", "result", "seconds"), summary), "", *rounds_tables(rounds, gate), "",
             f"![win rate]({charts['win_rate']})", "",
             "## Training", "", f"![loss curves]({charts['losses']})", "",
             f"![DPO reward accuracy]({charts['dpo_accuracy']})", "", "## Rollouts", ""]
    for index, scenario in enumerate(scenarios):
        parts += [f"### {scenario.title}: {scenario.outcome}", "", f"![rollout]({charts[f'rollout_{index}']})", "",
                  markdown_table(("event", "traffic", *EVIDENCE_SHOWN),
                                 [(e["event"], f"{e['traffic']:.0%}",
                                   *(str(evidence_columns(e["evidence"])[name]) for name in EVIDENCE_SHOWN))
                                  for e in scenario.events]), ""]
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path
