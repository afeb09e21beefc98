"""Reading domain documents: .txt/.md, .jsonl (`text` field), .html/.htm and .pdf (pypdf), files or folders.

.txt/.md/.html are UTF-8, or Chinese GB18030 (GBK, GB2312) when they are not UTF-8 and read as Chinese text.
Text is normalised (Unicode NFC, control characters removed, runs of spaces and blank lines collapsed).
A file that cannot be read is skipped with its reason (`file:line: problem`), never a traceback.
"""

import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from llmops.data.formats import decode_file
from llmops.errors import LLMOpsError, located
from llmops.fileio import MAX_FILE_BYTES, read_file_bytes

SUFFIXES = (".txt", ".md", ".jsonl", ".html", ".htm", ".pdf")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef\u2010-\u2027\u00b7]")
_IDEOGRAPH = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
MIN_IDEOGRAPH_SHARE = 0.1  # of the non-space characters, for a non-UTF-8 file to be read as GB18030


@dataclass(frozen=True)
class Document:
    source: str  # file, or file:line for a .jsonl record
    text: str


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "file[:line]: reason"


def normalize_text(text: str) -> str:
    """NFC, no control characters or lone surrogates, single spaces, at most one blank line between paragraphs;
    the lines of a fenced code block (``` or ~~~) keep their indentation and spacing, less trailing space."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    lines, fence = [], ""
    for line in text.split("\n"):
        marker = line.strip()[:3]
        if fence and marker != fence:
            lines.append(line.rstrip())
            continue
        if marker in ("```", "~~~"):
            fence = "" if fence else marker
        lines.append(_SPACES.sub(" ", line).strip())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        if tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden:
            self._hidden -= 1
        if tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def _pdf_text(path: Path, max_bytes: int) -> str:
    data = read_file_bytes(path, max_bytes)
    try:
        reader = PdfReader(io.BytesIO(data))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise located(path, None, None, f"unreadable PDF: {exc}") from exc


def _gb18030_text(raw: bytes) -> str | None:
    """`raw` decoded as GB18030 when that gives Chinese text: every non-ASCII character CJK (ideographs,
    punctuation, full-width forms) and ideographs at least MIN_IDEOGRAPH_SHARE of the non-space characters."""
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        return None
    foreign = [c for c in text if ord(c) > 0x7F]
    visible = len(text) - sum(c.isspace() for c in text)
    ideographs = len(_IDEOGRAPH.findall(text))
    if not visible or any(not _CJK.match(c) for c in foreign) or ideographs < MIN_IDEOGRAPH_SHARE * visible:
        return None
    return text


def _document_text(path: Path, max_bytes: int) -> str:
    """A text document: UTF-8 as `decode_file` reads it, else GB18030 when it reads as Chinese text."""
    try:
        return decode_file(path, max_bytes)
    except LLMOpsError as exc:
        if not isinstance(exc.__cause__, UnicodeDecodeError):
            raise
        text = _gb18030_text(read_file_bytes(path, max_bytes))
        if text is None:
            raise LLMOpsError(f"{exc} (nor Chinese GB18030/GBK: save the file as UTF-8)") from exc
        return text


def _jsonl_documents(path: Path, result: LoadResult, max_bytes: int) -> None:
    for number, line in enumerate(decode_file(path, max_bytes).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            result.skipped.append(str(located(path, number, None, f"invalid JSON: {exc.msg}")))
            continue
        except RecursionError:
            result.skipped.append(str(located(path, number, None, "invalid JSON: nested too deeply")))
            continue
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            result.skipped.append(str(located(path, number, "text", "missing or not a string")))
            continue
        _add(result, f"{path}:{number}", text)


def _add(result: LoadResult, source: str, text: str) -> None:
    normalized = normalize_text(text)
    if normalized:
        result.documents.append(Document(source, normalized))
    else:
        result.skipped.append(f"{source}: no text after normalisation")


def _load_file(path: Path, result: LoadResult, max_bytes: int) -> None:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        _jsonl_documents(path, result, max_bytes)
    elif suffix == ".pdf":
        _add(result, str(path), _pdf_text(path, max_bytes))
    elif suffix in (".html", ".htm"):
        _add(result, str(path), html_to_text(_document_text(path, max_bytes)))
    else:
        _add(result, str(path), _document_text(path, max_bytes))


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Paths given, plus what has a supported suffix inside folders, folders left out (sorted); a missing path is
    an error. FIFOs, devices and sockets are listed too: reading refuses them (with their reason) unopened."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and not p.is_dir())
        elif os.path.lexists(path):
            files.append(path)
        else:
            raise LLMOpsError(f"{path}: no such file or folder")
    return files


def _left_out(paths: Iterable[Path]) -> list[Path]:
    """The files inside the folders of `paths` that `expand_paths` leaves out (a suffix not in SUFFIXES), hidden
    files and the files of hidden folders aside (sorted)."""
    files: list[Path] = []
    for folder in (path for path in paths if path.is_dir()):
        files += sorted(p for p in folder.rglob("*") if p.suffix.lower() not in SUFFIXES and not p.is_dir()
                        and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return files


def load_documents(paths: Iterable[Path], max_bytes: int = MAX_FILE_BYTES) -> LoadResult:
    """Every readable document under `paths`; unreadable, unsupported, special (FIFO, device, socket) and
    too large (over `max_bytes`) files are listed in `skipped` with their reason."""
    result = LoadResult()
    paths = list(paths)
    result.skipped += [f"{path}: unsupported file type (use {', '.join(SUFFIXES)})" for path in _left_out(paths)]
    for path in expand_paths(paths):
        if path.suffix.lower() not in SUFFIXES:
            result.skipped.append(f"{path}: unsupported file type (use {', '.join(SUFFIXES)})")
            continue
        try:
            _load_file(path, result, max_bytes)
        except LLMOpsError as exc:
            result.skipped.append(str(exc))
    return result
