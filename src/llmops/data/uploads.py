"""Documents that come from the network (the UI): uploads are copied into `<workspace>/documents/uploads/`
under sanitised names, and corpus paths are confined to `<workspace>/documents/` (relative to it; a path or a
symlink that leaves it is refused). The CLI reads any path its operator gives."""

import re
from collections.abc import Sequence
from pathlib import Path

from llmops.data.documents import expand_paths
from llmops.errors import LLMOpsError
from llmops.fileio import read_file_bytes, write_bytes_atomic
from llmops.workspace import Workspace

UPLOAD_SUFFIXES = (".txt", ".md", ".jsonl", ".pdf")
MAX_NAME = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def uploads_dir(workspace: Workspace) -> Path:
    return workspace.documents_dir / "uploads"


def safe_name(name: str) -> str:
    """A file name of letters, digits and `._-` only, no leading dot, the suffix kept (lower case)."""
    path = Path(name.replace("\\", "/")).name
    stem, suffix = Path(path).stem, Path(path).suffix.lower()
    cleaned = _UNSAFE.sub("_", stem).strip("._")[: MAX_NAME - len(suffix)] or "document"
    return cleaned + suffix


def _free_path(folder: Path, name: str) -> Path:
    path, counter = folder / name, 1
    while path.exists():
        counter += 1
        path = folder / f"{Path(name).stem}_{counter}{Path(name).suffix}"
    return path


def _check_upload(file: Path) -> None:
    if file.suffix.lower() not in UPLOAD_SUFFIXES:
        raise LLMOpsError(f"{file.name}: not an allowed document type (upload {', '.join(UPLOAD_SUFFIXES)})")
    if file.is_symlink() or not file.is_file():
        raise LLMOpsError(f"{file.name}: not a regular file")


def save_uploads(workspace: Workspace, files: Sequence[Path]) -> list[Path]:
    """Copy uploaded `files` into documents/uploads/ under their sanitised names, never replacing a file
    (`_2`, `_3` …); returns the copies. Every file is checked before any is copied."""
    if not files:
        raise LLMOpsError("uploads: no file given")
    for file in files:
        _check_upload(file)
    limit = workspace.settings.data.max_file_bytes
    contents = [read_file_bytes(file, limit, "upload") for file in files]
    folder = uploads_dir(workspace)
    copies = []
    for file, data in zip(files, contents, strict=True):
        target = _free_path(folder, safe_name(file.name))
        write_bytes_atomic(target, data)
        copies.append(target)
    return copies


def network_documents(workspace: Workspace, entries: Sequence[str]) -> list[Path]:
    """The document files named by `entries` (files or folders relative to documents/, or absolute inside it),
    each resolved; LLMOpsError naming the entry when it, or a symlink found in a folder, leaves documents/."""
    folder = workspace.documents_dir
    paths = [workspace.confine(entry.strip(), folder) for entry in entries if entry.strip()]
    if not paths:
        raise LLMOpsError(f"documents: give at least one file or folder inside {folder}")
    return [workspace.confine(file, folder) for file in expand_paths(paths)]
