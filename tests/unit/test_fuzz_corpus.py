"""Fuzz of corpus documents (`llmops data corpus`): .txt/.md/.html/.jsonl/.pdf files truncated, corrupted,
binary, not UTF-8, empty, of wrong JSON types. Each file is read, or skipped and counted with its reason;
a run with nothing readable is an LLMOpsError naming the files, and leaves no file behind."""

import json
import random
from collections.abc import Iterator
from pathlib import Path

from llmops.data.corpus import build_corpus
from llmops.data.documents import load_documents
from llmops.data.registry import settings_path
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace

TEXT = "The desk lamp has three brightness levels and a USB-C port. 台灯有三档亮度。"
SEEDS: dict[str, bytes] = {
    ".txt": TEXT.encode(),
    ".md": f"# Lamp\n\n{TEXT}\n\n- item".encode(),
    ".html": f"<html><head><title>t</title><script>x()</script></head><body><p>{TEXT}</p></body></html>".encode(),
    ".jsonl": (json.dumps({"text": TEXT}) + "\n" + json.dumps({"text": TEXT + " Second."}) + "\n").encode(),
}
BAD_JSONL_LINES = [b"null", b"[]", b'"text"', b"{}", b'{"text": 1}', b'{"text": null}', b'{"text": ["a"]}',
                   b'{"text": {"a": 1}}', b'{"text": ""}', b'{"text": "\\ud800"}', b'{"text": "a"', b"{" * 5000,
                   b"[" * 100_000, b'{"txt": "wrong key"}']


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (Helvetica), with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _corruptions(data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    for cut in (0, 1, len(data) // 4, len(data) // 2, len(data) - 1):
        yield f"truncated@{cut}", data[:cut]
    for flips in (1, 8, 64):
        corrupted = bytearray(data)
        for _ in range(flips):
            corrupted[rng.randrange(len(corrupted))] = rng.randrange(256)
        yield f"flipped{flips}", bytes(corrupted)
    yield "invalid_utf8", data[: len(data) // 2] + b"\xff\xfe\xc3\x28" + data[len(data) // 2 :]
    yield "nul", data + b"\x00"
    yield "binary", bytes(rng.randrange(256) for _ in range(512))
    yield "whitespace", " \n\t\r\n\u3000\u200b".encode()
    yield "controls", bytes(range(1, 9)) + b"\x0b\x0c\x7f"
    yield "utf16", data.decode("utf-8", "replace").encode("utf-16")


def corpus_files(folder: Path) -> Iterator[Path]:
    rng = random.Random(0)
    seeds = {**SEEDS, ".pdf": minimal_pdf("The desk lamp has three brightness levels.")}
    for suffix, data in seeds.items():
        for label, content in _corruptions(data, rng):
            path = folder / f"{suffix[1:]}_{label}{suffix}"
            path.write_bytes(content)
            yield path
    for index, line in enumerate(BAD_JSONL_LINES):
        path = folder / f"jsonl_line_{index}.jsonl"
        path.write_bytes(line + b"\n")
        yield path
    for name in ("no_suffix", "image.png", "archive.zip", "..txt", "a b.txt"):
        path = folder / name
        path.write_bytes(TEXT.encode())
        yield path


def _leftovers(workspace: Workspace) -> list[Path]:
    """Dataset files written (each published one has its `.settings.yaml` beside it)."""
    files = [p for p in workspace.data_dir.rglob("*") if p.is_file() and p.name != "dataset_info.json"]
    datasets = [p for p in files if not p.name.endswith(".settings.yaml")]
    assert sorted(settings_path(p) for p in datasets) == sorted(set(files) - set(datasets))
    return sorted(datasets)


def test_every_malformed_document_is_read_or_counted_as_skipped(tmp_path: Path) -> None:
    files = list(corpus_files(tmp_path))
    result = load_documents([tmp_path])
    named = {d.source.split(":")[0] for d in result.documents} | {s.split(":")[0] for s in result.skipped}
    supported = [p for p in files if p.suffix in (".txt", ".md", ".html", ".jsonl", ".pdf")]
    assert {str(p) for p in supported} <= named
    assert len(result.skipped) >= 40
    assert all(d.text.strip() and "\x00" not in d.text for d in result.documents)
    unsupported = load_documents([p for p in files if p not in supported])
    assert len(unsupported.skipped) == len(files) - len(supported)
    assert all("unsupported file type" in s for s in unsupported.skipped)


def test_corpus_build_on_each_malformed_file(workspace: Workspace, tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    errors = built = 0
    for path in corpus_files(folder):
        info, before = workspace.dataset_info_path.read_bytes(), _leftovers(workspace)
        try:
            report = build_corpus(workspace, [path], tokenizer=str(tiny_model_dir), chunk_size=32)
        except LLMOpsError as exc:
            errors += 1
            assert str(path) in str(exc), exc
            assert workspace.dataset_info_path.read_bytes() == info
            assert _leftovers(workspace) == before
            continue
        built += 1
        rows = [json.loads(line) for line in report.path.read_text(encoding="utf-8").splitlines()]
        assert rows and all(isinstance(row["text"], str) and row["text"] for row in rows)
        assert len(report.skipped) <= 1
    assert errors >= 40 and built >= 1
    assert not [p for p in workspace.root.rglob("*.tmp")]
    assert len(_leftovers(workspace)) == built

