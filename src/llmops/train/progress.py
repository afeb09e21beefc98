"""Live progress of a LLaMA-Factory run and its final metrics, read from the files it writes.

`trainer_log.jsonl` (LLaMA-Factory's LogCallback): steps, loss, lr, eta, DPO reward/accuracy, throughput.
The run log (stdout of the Trainer): grad_norm, which trainer_log.jsonl leaves out.
`all_results.json` / `trainer_state.json` at the end: train_loss, samples/s, eval_loss, DPO rewards.
"""

import ast
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAINER_LOG = "trainer_log.jsonl"
_LOG_DICT = re.compile(r"\{'loss'[^{}]*\}")


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    loss: float | None
    lr: float | None
    eta: str
    elapsed: str
    grad_norm: float | None
    throughput: float | None
    samples_per_second: float | None
    accuracy: float | None
    reward: float | None
    eval_loss: float | None

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


def read_trainer_log(output_dir: Path) -> list[dict[str, Any]]:
    """The entries of trainer_log.jsonl written so far (a half-written last line is skipped)."""
    path = output_dir / TRAINER_LOG
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def last_logged_dict(log_text: str) -> dict[str, Any]:
    """The last `{'loss': …, 'grad_norm': …}` training log the Trainer printed, parsed."""
    for match in reversed(_LOG_DICT.findall(log_text)):
        try:
            value = ast.literal_eval(match)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return value
    return {}


def _seconds(clock: str) -> float | None:
    """`H:MM:SS` (or `D day, H:MM:SS`) → seconds."""
    days, _, rest = clock.rpartition(", ")
    parts = rest.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    day_count = int(days.split()[0]) if days else 0
    return day_count * 86400 + int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2])


def _latest(entries: list[dict[str, Any]], key: str) -> Any:
    """The newest value of `key` (evaluation entries leave training keys out)."""
    return next((entry[key] for entry in reversed(entries) if entry.get(key) is not None), None)


def read_progress(output_dir: Path, log_text: str = "", samples_per_step: int = 0) -> Progress | None:
    """The latest progress, or None before the first logging step.

    `samples_per_step` (batch size × gradient accumulation × devices) turns steps into samples/s.
    """
    entries = read_trainer_log(output_dir)
    if not entries:
        return None
    last = entries[-1]
    printed = last_logged_dict(log_text)
    step = int(last.get("current_steps", 0))
    elapsed = _seconds(str(last.get("elapsed_time", "")))
    return Progress(
        step=step,
        total=int(last.get("total_steps", 0)),
        loss=_float(_latest(entries, "loss")),
        lr=_float(_latest(entries, "lr")),
        eta=str(last.get("remaining_time", "")),
        elapsed=str(last.get("elapsed_time", "")),
        grad_norm=_float(printed.get("grad_norm")),
        throughput=_float(last.get("throughput")),
        samples_per_second=round(step * samples_per_step / elapsed, 2) if elapsed and samples_per_step else None,
        accuracy=_float(_latest(entries, "accuracy")),
        reward=_float(_latest(entries, "reward")),
        eval_loss=_float(_latest(entries, "eval_loss")),
    )


def losses(output_dir: Path) -> list[float]:
    found = (_float(entry.get("loss")) for entry in read_trainer_log(output_dir))
    return [loss for loss in found if loss is not None]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def final_metrics(output_dir: Path) -> dict[str, Any]:
    """train_loss, samples/s, eval_loss, and for DPO the last reward accuracy and margin; plot files kept."""
    metrics: dict[str, Any] = {
        key: value for key, value in _read_json(output_dir / "all_results.json").items()
        if isinstance(value, int | float) and math.isfinite(value)
    }
    history = _read_json(output_dir / "trainer_state.json").get("log_history", [])
    steps = [entry for entry in history if isinstance(entry, dict) and "loss" in entry]
    if steps:
        metrics["final_loss"] = steps[-1]["loss"]
        for key, name in (("rewards/accuracies", "reward_accuracy"), ("rewards/margins", "reward_margin"),
                          ("rewards/chosen", "rewards_chosen"), ("rewards/rejected", "rewards_rejected")):
            if key in steps[-1]:
                metrics[name] = steps[-1][key]
                metrics[f"first_{name}"] = steps[0].get(key)
    metrics["plots"] = sorted(path.name for path in output_dir.glob("training_*.png"))
    return metrics
