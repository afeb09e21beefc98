"""Facts that template-mode Self-Instruct reads out of any workspace's documents.

FAQ pairs (`**问：…**` + `答：…` / `**Q: …**` + `A: …`), prose paragraphs and, read out of the documents'
structure (doc_structure.py): sections under markdown headings, lists (numbered or bulleted), definitions
("X is a …", "X means …", "**X**: …", "X：…", "X是指…") and quantities (a number with its unit). A template
set that needs more (the demo shop's reviews and products: demo/shop_facts.py) extracts it on top of these.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from llmops.data.doc_structure import Definition, DocList, Quantity, Section, parse_structure

_FAQ = re.compile(r"\*\*\s*(?:问|Q)\s*[:：]\s*(?P<q>[^*\n]+?)\s*\*\*\s*\n\s*(?:答|A)\s*[:：]\s*(?P<a>[^\n]+)")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def is_chinese(text: str) -> bool:
    return len(_CJK.findall(text)) * 3 >= len(text.replace(" ", ""))


@dataclass(frozen=True)
class Faq:
    question: str
    answer: str

    @property
    def zh(self) -> bool:
        return is_chinese(self.question)


@dataclass(frozen=True)
class Facts:
    faqs: list[Faq] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    lists: list[DocList] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    quantities: list[Quantity] = field(default_factory=list)


def _paragraphs(text: str) -> list[str]:
    blocks = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text))
    return [b for b in blocks if len(b) >= 60 and not b.startswith(("#", "|", "-", "[", "*", "1."))]


def extract_facts(texts: Iterable[str]) -> Facts:
    """FAQ pairs, paragraphs, sections, lists, definitions and quantities of `texts`."""
    corpus = list(texts)
    faqs = [Faq(m["q"].strip(), m["a"].strip()) for text in corpus for m in _FAQ.finditer(text)]
    paragraphs = [p for text in corpus for p in _paragraphs(text)]
    structures = [parse_structure(index, _FAQ.sub("", text)) for index, text in enumerate(corpus)]
    return Facts(faqs, paragraphs, [s for d in structures for s in d.sections],
                 [li for d in structures for li in d.lists], [x for d in structures for x in d.definitions],
                 [q for d in structures for q in d.quantities])
