"""Domain corpus: loading, normalising, de-duplication and token-bounded chunking (spec 4.1)."""

import json
from pathlib import Path

import pytest
from pypdf import PdfWriter
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from llmops.data.chunking import TokenCounter, chunk_text
from llmops.data.corpus import DomainCorpusProcessor, build_corpus
from llmops.data.documents import html_to_text, load_documents, normalize_text
from llmops.demo.preset import preset_documents
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> PreTrainedTokenizerBase:
    loaded: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(tiny_model_dir)
    return loaded


def test_normalize_text() -> None:
    assert normalize_text("Ａ\u0301 a\t\tb\x07\r\n\n\n\nc\u3000d ") == "Ａ́ a b\n\nc d"
    assert normalize_text("e\u0301") == "\u00e9"


def test_normalize_text_keeps_the_indentation_of_fenced_code() -> None:
    text = ("  Chlorine   dose:\n\n```python\ndef dose(flow: float) -> float:  \n    if flow  >  0:\n"
            "\t\treturn flow / 1000\n```\n   After  the block.\n~~~\n  x = 1\n~~~")
    assert normalize_text(text) == ("Chlorine dose:\n\n```python\ndef dose(flow: float) -> float:\n    if flow  >  0:\n"
                                    "\t\treturn flow / 1000\n```\nAfter the block.\n~~~\n  x = 1\n~~~")


def test_html_text_skips_scripts() -> None:
    text = html_to_text("<html><head><title>t</title><script>x=1</script></head><body><p>One</p><p>Two</p></body>")
    assert normalize_text(text) == "One\n\nTwo"


def test_load_documents_reads_each_type_and_counts_skips(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\nSome text.")
    (tmp_path / "b.jsonl").write_text('{"text": "one"}\n{bad\n{"text": 5}\n{"text": "two"}\n')
    (tmp_path / "c.html").write_text("<p>html text</p>")
    (tmp_path / "d.txt").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "e.txt").write_bytes(b"")
    (tmp_path / "f.pdf").write_bytes(b"%PDF-1.4 broken")
    writer = PdfWriter()
    writer.add_blank_page(72, 72)
    with (tmp_path / "g.pdf").open("wb") as handle:
        writer.write(handle)
    result = load_documents([tmp_path])
    assert [d.text for d in result.documents] == ["# Title\n\nSome text.", "one", "two", "html text"]
    assert result.documents[1].source == f"{tmp_path / 'b.jsonl'}:1"
    skipped = "\n".join(result.skipped)
    assert f"{tmp_path / 'b.jsonl'}:2: invalid JSON" in skipped
    assert f"{tmp_path / 'b.jsonl'}:3: text: missing or not a string" in skipped
    assert f"{tmp_path / 'd.txt'}:1: binary file" in skipped
    assert f"{tmp_path / 'e.txt'}:1: empty file" in skipped
    assert f"{tmp_path / 'f.pdf'}: unreadable PDF" in skipped
    assert f"{tmp_path / 'g.pdf'}: no text after normalisation" in skipped
    with pytest.raises(LLMOpsError, match="no such file"):
        load_documents([tmp_path / "missing"])


def test_unsupported_files_in_a_folder_are_listed_as_skipped(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# Title\n\nSome text.")
    (tmp_path / "sub" / "notes.docx").write_bytes(b"PK\x03\x04")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    result = load_documents([tmp_path])
    assert [d.text for d in result.documents] == ["# Title\n\nSome text."]
    assert result.skipped == [f"{tmp_path / 'sub' / 'notes.docx'}: unsupported file type "
                              "(use .txt, .md, .jsonl, .html, .htm, .pdf)"]


def test_chinese_gbk_documents_are_decoded_and_other_encodings_skipped(tmp_path: Path) -> None:
    text = "管网维修规程\n一、爆管抢修时，先关闭上下游阀门，再排空管段。\n二、管径 DN300 以上须报调度。"
    (tmp_path / "gbk.txt").write_bytes(text.encode("gbk"))
    (tmp_path / "gb.html").write_bytes(f"<p>{text}</p>".encode("gb18030"))
    (tmp_path / "latin1.md").write_bytes("Café au lait, crème brûlée and a naïve résumé.".encode("latin-1"))
    result = load_documents([tmp_path])
    assert sorted(d.text for d in result.documents) == sorted([normalize_text(text)] * 2)
    assert result.skipped == [f"{tmp_path / 'latin1.md'}:1: invalid UTF-8 (nor Chinese GB18030/GBK: save the "
                              "file as UTF-8)"]


@pytest.mark.parametrize(("size", "overlap"), [(16, 0), (64, 0), (64, 16), (512, 0)])
def test_chunks_never_exceed_the_size(tokenizer: PreTrainedTokenizerBase, size: int, overlap: int) -> None:
    counter = TokenCounter(tokenizer)
    text = normalize_text(preset_documents()[0].read_text()) + "\n\n" + "无标点的长句子" * 200
    chunks = chunk_text(text, size, counter, overlap)
    assert chunks and max(counter.count(c) for c in chunks) <= size
    joined = "".join("".join(c.split()) for c in chunks)
    if overlap == 0:  # nothing lost, nothing repeated
        assert joined == "".join(text.split())


def test_paragraphs_stay_whole_when_they_fit(tokenizer: PreTrainedTokenizerBase) -> None:
    counter = TokenCounter(tokenizer)
    paragraphs = ["The earbuds cost 59 yuan.", "The desk lamp costs 129 yuan.", "Returns within 7 days."]
    limit = max(counter.count(p) for p in paragraphs)
    assert counter.count(" ".join(paragraphs[:2])) > limit and counter.count(" ".join(paragraphs[1:])) > limit
    assert chunk_text("\n\n".join(paragraphs), limit, counter) == paragraphs
    assert chunk_text("\n\n".join(paragraphs), 10 * limit, counter) == ["\n\n".join(paragraphs)]


def test_overlap_must_be_smaller_than_the_chunk(tokenizer: PreTrainedTokenizerBase) -> None:
    with pytest.raises(LLMOpsError, match="chunk_overlap"):
        chunk_text("text", 16, TokenCounter(tokenizer), 16)


def test_exact_and_near_duplicates_are_removed(tokenizer: PreTrainedTokenizerBase) -> None:
    original = preset_documents()[1].read_text()
    near = original.replace("¥", "RMB ", 3)
    processor = DomainCorpusProcessor(tokenizer, chunk_size=128)
    corpus = processor.process_documents([original, original, near, "A different short document."])
    stats = processor.stats
    assert (stats.documents, stats.exact_duplicates, stats.near_duplicates) == (4, 1, 1)
    assert corpus[-1] == {"text": "A different short document."}
    assert stats.max_chunk_tokens <= 128 and stats.chunks == len(corpus)


def test_build_corpus_on_preset_documents(workspace: Workspace, tiny_model_dir: Path,
                                          tokenizer: PreTrainedTokenizerBase) -> None:
    planted = workspace.root / "planted"
    planted.mkdir()
    source = preset_documents()[2].read_text()
    (planted / "copy.md").write_text(source.replace("\n\n", "\n\n\n", 5))  # same after normalisation
    (planted / "near.md").write_text(source.replace("¥", "CNY ", 2))
    report = build_corpus(workspace, [*preset_documents(), planted], tokenizer=str(tiny_model_dir), chunk_size=256)
    assert report.stats.exact_duplicates == 1 and report.stats.near_duplicates == 1
    rows = [json.loads(line) for line in report.path.read_text().splitlines()]
    counter = TokenCounter(tokenizer)
    assert len(rows) == report.stats.chunks and max(counter.count(r["text"]) for r in rows) <= 256
    assert report.path.name.startswith("domain_corpus_") and report.dataset.kind == "pt"
    info = json.loads(workspace.dataset_info_path.read_text())
    assert info[report.dataset.name] == {"file_name": f"cpt/{report.path.name}", "columns": {"prompt": "text"}}


def test_build_corpus_without_text_writes_nothing(workspace: Workspace, tiny_model_dir: Path) -> None:
    bad = workspace.root / "bad.txt"
    bad.write_bytes(b"\x00\x01")
    with pytest.raises(LLMOpsError, match="no text to write"):
        build_corpus(workspace, [bad], tokenizer=str(tiny_model_dir))
    assert list(workspace.stage_data_dir("cpt").iterdir()) == []


def test_unknown_tokenizer_is_a_clear_error(workspace: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="no-such-tokenizer: no such folder"):
        build_corpus(workspace, preset_documents(), tokenizer=str(workspace.root / "no-such-tokenizer"))
