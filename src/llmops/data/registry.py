"""The dataset registry: `data/llmops/dataset_info.json` (what LLaMA-Factory reads) and the `datasets` table
(version, row count, sha256, creation time). Names are checked; files stay inside `data/llmops`.
"""

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from llmops import db
from llmops.data.formats import FORMATS, ValidationReport, read_records, validate_file
from llmops.errors import LLMOpsError
from llmops.fileio import MAX_FILE_BYTES, open_regular_file, read_text_file, write_json_atomic, write_jsonl_atomic
from llmops.settings import save_settings
from llmops.workspace import Workspace

KINDS = ("pt", "sft", "dpo", "kto", "eval")  # eval: held-out sets (data/eval_sets.py), never in dataset_info.json
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_MESSAGE_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                 "assistant_tag": "assistant", "system_tag": "system"}


@dataclass(frozen=True)
class DatasetRecord:
    name: str
    kind: str
    file_name: str  # relative to data/llmops
    format: str
    rows: int
    sha256: str
    version: int
    created_at: float


def check_name(name: str) -> str:
    """A dataset name: letters, digits, `_.-`, no path separators or `..`."""
    if not _NAME.match(name) or ".." in name:
        raise LLMOpsError(f"dataset name {name!r}: use letters, digits, '_', '.', '-' (no paths, no '..')")
    return name


def data_file(workspace: Workspace, file_name: str) -> Path:
    """The absolute path of `file_name` (relative to data/llmops), refusing anything outside that folder."""
    path = workspace.confine(file_name, workspace.data_dir)
    if path == workspace.data_dir.resolve():
        raise LLMOpsError(f"{file_name}: dataset files must stay inside {path}")
    return path


def dataset_info_entry(fmt: str, file_name: str) -> dict[str, Any]:
    """The `dataset_info.json` entry LLaMA-Factory needs for a file in format `fmt`."""
    if fmt == "text":
        return {"file_name": file_name, "columns": {"prompt": "text"}}
    if fmt == "messages":
        return {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "messages"},
                "tags": dict(_MESSAGE_TAGS)}
    if fmt == "sharegpt":
        return {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "conversations"}}
    if fmt == "alpaca":
        return {"file_name": file_name, "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    if fmt == "ranking":
        return {"file_name": file_name, "formatting": "sharegpt", "ranking": True,
                "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
                "tags": dict(_MESSAGE_TAGS)}
    if fmt == "kto":
        return {"file_name": file_name, "formatting": "sharegpt", "ranking": False,
                "columns": {"messages": "messages", "kto_tag": "kto_tag"}, "tags": dict(_MESSAGE_TAGS)}
    raise LLMOpsError(f"format {fmt!r} cannot be registered for LLaMA-Factory")


def timestamped_path(workspace: Workspace, stage: str, prefix: str, suffix: str) -> Path:
    """`data/llmops/<stage>/<prefix>_<YYYYmmdd_HHMMSS><suffix>`, with `_2`, `_3` … if that name is taken."""
    folder = workspace.stage_data_dir(stage)
    stem = f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}"
    path, n = folder / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}_{n}{suffix}"
    return path


def read_dataset_info(workspace: Workspace) -> dict[str, Any]:
    path = workspace.dataset_info_path
    if not path.exists():
        return {}
    text = read_text_file(path, workspace.settings.data.max_file_bytes)
    try:
        info = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise LLMOpsError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise LLMOpsError(f"{path}: expected a JSON object of datasets")
    return info


def file_sha256(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    digest = hashlib.sha256()
    with open_regular_file(path, max_bytes) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _from_row(row: Any) -> DatasetRecord:
    return DatasetRecord(row.name, row.kind, row.file_name, row.format, row.rows, row.sha256, row.version,
                         row.created_at)


def register_dataset(workspace: Workspace, name: str, path: Path, kind: str, fmt: str, *,
                     llamafactory: bool = True) -> DatasetRecord:
    """Register (or re-register) a file inside data/llmops: one DB transaction plus an atomic dataset_info.json.

    The version goes up by one whenever the file's content changes; `llamafactory=False` keeps the dataset
    out of dataset_info.json (e.g. the TRL export, which LLaMA-Factory does not read).
    """
    check_name(name)
    if kind not in KINDS or fmt not in FORMATS:
        raise LLMOpsError(f"dataset {name}: kind must be one of {KINDS}, format one of {FORMATS}")
    file_name = data_file(workspace, str(path)).relative_to(workspace.data_dir.resolve()).as_posix()
    absolute = data_file(workspace, file_name)
    limit = workspace.settings.data.max_file_bytes
    sha, rows = file_sha256(absolute, limit), len(read_records(absolute, limit))
    with workspace.engine.begin() as conn:
        old = conn.execute(select(db.datasets).where(db.datasets.c.name == name)).first()
        version = 1 if old is None else old.version + int(old.sha256 != sha)
        record = DatasetRecord(name, kind, file_name, fmt, rows, sha, version, time.time())
        values = {k: v for k, v in asdict(record).items() if k != "name"}
        if old is None:
            conn.execute(db.datasets.insert().values(name=name, **values))
        else:
            conn.execute(db.datasets.update().where(db.datasets.c.name == name).values(**values))
        if llamafactory:
            info = read_dataset_info(workspace)
            info[name] = dataset_info_entry(fmt, file_name)
            write_json_atomic(workspace.dataset_info_path, info)
    return record


def publish_dataset(workspace: Workspace, name: str, path: Path, records: Sequence[Any], kind: str, fmt: str, *,
                    llamafactory: bool = True) -> DatasetRecord:
    """Write `records` atomically (`.json` array or `.jsonl`) and register them; a new file that cannot be
    registered is removed again, so no unregistered half-result is left behind."""
    created = not path.exists()
    if path.suffix == ".json":
        write_json_atomic(path, list(records))
    else:
        write_jsonl_atomic(path, records)
    try:
        record = register_dataset(workspace, name, path, kind, fmt, llamafactory=llamafactory)
    except BaseException:
        if created:
            path.unlink(missing_ok=True)
        raise
    save_settings(workspace.settings, settings_path(path))
    return record


def settings_path(path: Path) -> Path:
    """Where the resolved settings that produced a dataset file are kept: `<file>.settings.yaml` beside it."""
    return path.with_name(path.name + ".settings.yaml")


def list_datasets(workspace: Workspace) -> list[DatasetRecord]:
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(db.datasets).order_by(db.datasets.c.created_at)).all()
    return [_from_row(row) for row in rows]


def latest_dataset(workspace: Workspace, kind: str, fmt: str | None = None) -> str:
    """Name of the newest registered dataset of `kind` (pt | sft | dpo | eval), optionally of one format."""
    newest = [d for d in list_datasets(workspace) if d.kind == kind and fmt in (None, d.format)]
    if not newest:
        raise LLMOpsError(f"no {kind} dataset is registered in {workspace.dataset_info_path} "
                          f"(create one with `llmops data …` or pass --dataset)")
    return newest[-1].name


def get_dataset(workspace: Workspace, name: str) -> DatasetRecord:
    check_name(name)
    with workspace.engine.connect() as conn:
        row = conn.execute(select(db.datasets).where(db.datasets.c.name == name)).first()
    if row is None:
        known = ", ".join(d.name for d in list_datasets(workspace)) or "none"
        raise LLMOpsError(f"dataset {name!r} is not registered (registered: {known})")
    return _from_row(row)


def dataset_path(workspace: Workspace, name: str) -> Path:
    return data_file(workspace, get_dataset(workspace, name).file_name)


def names_a_file(target: str) -> bool:
    """Whether `target` is a .json/.jsonl path (something is there, or it has a folder) rather than a dataset name;
    a path of another suffix is an error."""
    if Path(target).suffix in (".json", ".jsonl"):
        return os.path.lexists(target) or "/" in target
    if "/" in target or os.path.isfile(target):
        raise LLMOpsError(f"{target}: not a .json/.jsonl dataset file (give one, or the name of a registered dataset)")
    return False


def validate_dataset(workspace: Workspace, name_or_file: str) -> ValidationReport:
    """Validate a registered dataset against its format, or any file (format detected from its content)."""
    if names_a_file(name_or_file):
        return validate_file(Path(name_or_file), max_bytes=workspace.settings.data.max_file_bytes)
    return validate_registered(workspace, name_or_file)


def validate_registered(workspace: Workspace, name: str) -> ValidationReport:
    """Validate a registered dataset (by name only, never a path) against its format and its sha256."""
    record = get_dataset(workspace, name)
    path = data_file(workspace, record.file_name)
    if not path.exists():
        raise LLMOpsError(f"dataset {record.name}: file {path} is missing")
    limit = workspace.settings.data.max_file_bytes
    report = validate_file(path, record.format, max_bytes=limit)
    if file_sha256(path, limit) != record.sha256:
        report.errors.append(f"{path}: sha256 differs from the registered one (the file changed)")
    return report
