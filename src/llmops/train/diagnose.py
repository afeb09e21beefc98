"""Recognise the spec's section-10 training failures in a run's log and losses, with the spec's remedy."""

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnosis:
    problem: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.problem} — {self.remedy}"


_OOM = re.compile(r"out of memory|OutOfMemoryError|can't allocate memory|Cannot allocate memory", re.IGNORECASE)
_UNDEFINED = re.compile(r"Undefined dataset (\S+) in (\S+?)\.?$", re.MULTILINE)
_MISSING_FILE = re.compile(r"File (\S+) not found\.")
_NO_BLOCK = re.compile(r"Cannot find sufficient samples")
_UNKNOWN_KEYS = re.compile(r"Some keys are not used by the HfArgumentParser: (\[.*?\])")
_FORMAT = re.compile(
    r"KeyError: '(\w+)'|Cannot find valid samples|Invalid role tag|Invalid message count"
    r"|The dataset is not applicable in the current training stage|JSONDecodeError|Not a valid JSON"
)


def _oom(config_path: str) -> Diagnosis:
    return Diagnosis(
        "out of memory (spec 10.1.1)",
        f"in {config_path} set per_device_train_batch_size: 1, gradient_accumulation_steps: 16, "
        "cutoff_len: 512, gradient_checkpointing: true (on GPU also quantization_bit: 8)",
    )


def _format(match: re.Match[str], dataset_info: str) -> Diagnosis:
    detail = f"missing field {match.group(1)!r}" if match.group(1) else match.group(0)
    return Diagnosis(
        f"wrong data format: {detail} (spec 10.2.1)",
        f"check the dataset file and its entry in {dataset_info}: pt needs columns.prompt=text; sft/dpo need "
        "formatting: sharegpt with columns.messages (role/content or from/value tags); dpo also ranking: true "
        "and chosen/rejected columns",
    )


def diagnose_log(log: str, config_path: str, dataset_info: str) -> list[Diagnosis]:
    """The section-10 failures that the text of a run's log shows."""
    found: list[Diagnosis] = []
    if _OOM.search(log):
        found.append(_oom(config_path))
    undefined = _UNDEFINED.search(log)
    if undefined:
        found.append(Diagnosis(
            f"dataset {undefined.group(1)!r} is not registered in {undefined.group(2)} (spec 10.2.2)",
            f"register it with the data registry or add it to {dataset_info} with file_name, columns "
            "(prompt: text for CPT; messages for SFT/DPO), formatting: sharegpt and, for DPO, ranking: true; "
            f"or fix the dataset key in {config_path}",
        ))
    missing = _MISSING_FILE.search(log)
    if missing:
        found.append(Diagnosis(
            f"dataset file {missing.group(1)} does not exist (spec 10.2.2)",
            f"fix file_name in {dataset_info} or create the file",
        ))
    unknown = _UNKNOWN_KEYS.search(log)
    if unknown:
        found.append(Diagnosis(f"unknown LLaMA-Factory keys {unknown.group(1)}",
                               f"fix or remove them in {config_path} (`llmops train … --config-only` checks a config)"))
    if _NO_BLOCK.search(log):
        found.append(Diagnosis(
            "the corpus gives no training block: CPT packs it into blocks of cutoff_len tokens, and it has fewer "
            "tokens than one block",
            f"lower cutoff_len in {config_path} (train.cpt.cutoff_len) to at most the corpus's tokens (`llmops data "
            "corpus` prints them), or add documents",
        ))
    bad_format = _FORMAT.search(log)
    if bad_format:
        found.append(_format(bad_format, dataset_info))
    return found


def diagnose_losses(losses: list[float], config_path: str) -> Diagnosis | None:
    """Loss not converging (spec 10.1.2): NaN/inf, or no lower at the end than at the start."""
    if not losses:
        return None
    remedy = (
        f"in {config_path} lower learning_rate (e.g. 1.0e-6), raise warmup_steps (e.g. 500), set "
        "max_grad_norm: 1.0, and check the data quality (format, outliers)"
    )
    if any(math.isnan(loss) or math.isinf(loss) for loss in losses):
        return Diagnosis("loss is NaN/inf (spec 10.1.2)", remedy)
    if len(losses) >= 5:
        head = sum(losses[:2]) / 2
        tail = sum(losses[-2:]) / 2
        if tail >= head:
            return Diagnosis(f"loss not converging: {head:.4f} at the start, {tail:.4f} at the end (spec 10.1.2)",
                             remedy)
    return None
