"""Files: atomic writes (a temp file in the same folder, fsync, then rename: readers never see half a file) and
checked reads of files a user names (regular files only, at most a size limit, never blocking on a FIFO)."""

import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from llmops.errors import located

FILE_MODE = 0o644  # what open() gives under the usual umask; mkstemp alone would leave 0600
MAX_FILE_BYTES = 256 * 1024 * 1024  # the default of data.max_file_bytes, and the limit where no workspace is at hand
_KINDS = ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _stat(path: Path, what: str) -> os.stat_result | None:
    """`os.stat` (symlinks followed); None when nothing is there; an LLMOpsError for a path that cannot be used."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except ValueError as exc:  # an embedded NUL byte
        raise located(ascii(str(path)), None, None, f"not a usable {what} path ({exc})") from exc
    except OSError as exc:
        raise located(path, None, None, f"cannot read: {exc.strerror or exc}") from exc


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _check_file(path: Path, info: os.stat_result, max_bytes: int, what: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise located(path, None, None, f"is {_kind(info.st_mode)}, not a regular {what}")
    if info.st_size > max_bytes:
        raise located(path, None, None, f"{info.st_size:,} bytes is over the limit of {max_bytes:,} bytes "
                                        "(setting data.max_file_bytes)")


def check_regular_file(path: Path, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> os.stat_result:
    """Refuse anything at `path` but a regular file of at most `max_bytes` (FIFOs, devices, sockets, folders,
    missing files) with an error naming the path; never opens it, so nothing can block."""
    info = _stat(path, what)
    if info is None:
        raise located(path, None, None, f"no such {what}")
    _check_file(path, info, max_bytes, what)
    return info


def check_folder(path: Path, what: str = "folder", *, missing_ok: bool = False) -> bool:
    """Refuse anything at `path` but a folder; True when a folder is there, False when nothing is (`missing_ok`)."""
    info = _stat(path, what)
    if info is None and missing_ok:
        return False
    if info is None:
        raise located(path, None, None, f"no such {what}")
    if not stat.S_ISDIR(info.st_mode):
        raise located(path, None, None, f"is {_kind(info.st_mode)}, not a {what}")
    return True


@contextmanager
def open_regular_file(path: Path, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> Iterator[BinaryIO]:
    """A regular file of at most `max_bytes`, open for reading: checked before opening, opened without blocking
    and checked again on the open file (a file swapped for a FIFO in between is refused too)."""
    check_regular_file(path, max_bytes, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise located(path, None, None, f"cannot read: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        _check_file(path, os.fstat(fd), max_bytes, what)
        yield handle


def read_file_bytes(path: Path, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> bytes:
    """The bytes of a checked file (see `open_regular_file`); one that grows past `max_bytes` is refused."""
    with open_regular_file(path, max_bytes, what) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise located(path, None, None, f"over the limit of {max_bytes:,} bytes (setting data.max_file_bytes)")
    return data


def read_text_file(path: Path, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> str:
    """A checked file (see `read_file_bytes`) as UTF-8 text; binary (NUL bytes) and invalid UTF-8 are errors
    that name the line."""
    raw = read_file_bytes(path, max_bytes, what)
    if b"\x00" in raw:
        raise located(path, raw.count(b"\n", 0, raw.index(b"\x00")) + 1, None, "binary file (NUL byte)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise located(path, raw.count(b"\n", 0, exc.start) + 1, None, "invalid UTF-8") from exc


def write_bytes_atomic(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), mode)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def write_jsonl_atomic(path: Path, rows: Iterable[Any]) -> int:
    """Write one JSON object a line; returns the number of rows written."""
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)
