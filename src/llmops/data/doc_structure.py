"""The structure of one document, as generic template-mode Self-Instruct reads it (doc_facts.py collects it).

Markdown headings (`#` … `######`) open sections; blocks are separated by blank lines; a block whose lines
are items (`1.`, `1)`, `1、`, `-`, `*`, `+`, `•`) is a list, any other block is prose. Sentences of the prose
and of the list items give definitions ("X is a …", "X means …", "**X**: …", "X：…", "X是指…") and
quantities (a number with the unit written after it: "30 days", "200 克", "15%").
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
_ITEM = re.compile(r"^\s*(?:(?P<number>\d{1,3})[.)、]|[-*+•])\s+(?P<text>\S.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(])|(?<=[。！？；])")
_CJK_END = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]$")
_TERM = r"[A-Za-z][\w-]*(?: [\w-]+){0,3}"
_DEFINITIONS = (
    re.compile(rf"^(?:(?:An?|The) )?[\"“]?(?P<term>{_TERM})[\"”]? (?:is|are) (?:an?|the|one of) \S"),
    re.compile(rf"^(?:(?:An?|The) )?[\"“]?(?P<term>{_TERM})[\"”]? (?:means|refers to|stands for) \S"),
    re.compile(r"^\*\*(?P<term>[^*\n]{1,40})\*\*\s*(?:[:：-]|—)\s*\S"),
    re.compile(r"^(?P<term>[\u4e00-\u9fffA-Za-z0-9]{2,12})(?:：|是指|指的是|是一(?:种|道|个|款|类|份))\S"),
)
_NOT_TERMS = {"it", "this", "that", "these", "those", "there", "he", "she", "they", "we", "you", "i", "what",
              "which", "who", "q", "a", "问", "答", "注意", "提示"}
_EN_QUANTITY = re.compile(r"(?<![\w.,])(?P<value>\d+(?:\.\d+)?)(?: ?(?P<unit>%|[A-Za-z]{2,12}))(?![\w.]\d)")
_ZH_UNITS = ("分钟", "小时", "毫升", "公斤", "千克", "厘米", "毫米", "公里", "平方米", "年", "个月", "月", "周",
             "天", "秒", "克", "斤", "升", "米", "元", "个", "只", "勺", "杯", "片", "块", "张", "页", "条", "份",
             "次", "人", "岁", "度")
_ZH_QUANTITY = re.compile(rf"(?<![\d.])(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>{'|'.join(_ZH_UNITS)})")
_NOT_UNITS = {"of", "and", "or", "to", "in", "on", "at", "by", "for", "with", "from", "the", "an", "is", "are",
              "was", "were", "be", "as", "if", "it", "that", "this", "than", "then", "but", "not", "no", "per",
              "each", "more", "less", "th", "st", "nd", "rd", "am", "pm"}


@dataclass(frozen=True)
class Section:
    """A markdown heading and what stands under it up to the next heading: its prose blocks and lists."""

    document: int
    heading: str
    paragraphs: tuple[str, ...]
    lists: tuple[tuple[str, ...], ...]

    @property
    def text(self) -> str:
        lists = ("\n".join(f"- {item}" for item in items) for items in self.lists)
        return "\n\n".join([*self.paragraphs, *lists])


@dataclass(frozen=True)
class DocList:
    """A numbered (`ordered`) or bulleted list and the heading it stands under ("" when none)."""

    document: int
    heading: str
    items: tuple[str, ...]
    ordered: bool


@dataclass(frozen=True)
class Definition:
    term: str
    sentence: str


@dataclass(frozen=True)
class Quantity:
    """A number (`value`) with its unit, as written (`written`: "30 days", "200 克"), in `sentence`."""

    document: int
    value: float
    written: str
    unit: str
    sentence: str


@dataclass(frozen=True)
class Structure:
    sections: list[Section]
    lists: list[DocList]
    definitions: list[Definition]
    quantities: list[Quantity]


def _join(lines: list[str]) -> str:
    """Lines of one block as one line: a space between them, none after a CJK character."""
    return "".join(f"{line}{'' if _CJK_END.search(line) else ' '}" for line in lines).strip()


def _blocks(text: str) -> Iterator[tuple[str, list[str]]]:
    """(heading, lines) of each block of `text`, a heading line ending the block before it."""
    heading, lines = "", list[str]()
    for line in [*text.splitlines(), ""]:
        match = _HEADING.match(line)
        if match or not line.strip():
            if lines:
                yield heading, lines
            lines = []
            heading = match["text"].strip("* ") if match else heading
        else:
            lines.append(line.strip())


def _items(lines: list[str]) -> tuple[list[str], bool] | None:
    """The items of a list block (continuation lines joined to their item) and whether it is numbered."""
    first = _ITEM.match(lines[0])
    if first is None:
        return None
    items: list[str] = []
    for line in lines:
        match = _ITEM.match(line)
        if match:
            items.append(match["text"].strip())
        else:
            items[-1] = f"{items[-1]} {line}"
    return items, first["number"] is not None


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) >= 6]


def definition(sentence: str) -> Definition | None:
    for pattern in _DEFINITIONS:
        match = pattern.match(sentence)
        term = match["term"].strip() if match else ""
        if term and term.lower() not in _NOT_TERMS and not term[-1].isdigit():
            return Definition(term, sentence.replace("**", ""))
    return None


def quantities(document: int, sentence: str) -> list[Quantity]:
    found = [*_ZH_QUANTITY.finditer(sentence), *_EN_QUANTITY.finditer(sentence)]
    return [Quantity(document, float(m["value"]), m[0], m["unit"], sentence) for m in found
            if m["unit"] and m["unit"].lower() not in _NOT_UNITS]


def parse_structure(document: int, text: str) -> Structure:
    """The sections, lists, definitions and quantities of `text` (document number `document`)."""
    order: list[str] = []
    paragraphs: dict[str, list[str]] = {}
    lists: list[DocList] = []
    for heading, lines in _blocks(text):
        if lines[0].startswith(("|", "<", "```", "![")):
            continue
        if heading not in paragraphs:
            order.append(heading)
            paragraphs[heading] = []
        parsed = _items(lines)
        if parsed:
            lists.append(DocList(document, heading, tuple(parsed[0]), parsed[1]))
        else:
            paragraphs[heading].append(_join(lines))
    sections = [Section(document, h, tuple(paragraphs[h]), tuple(li.items for li in lists if li.heading == h))
                for h in order if h]
    units = [*(s for p in paragraphs.values() for b in p for s in sentences(b)),
             *(item for li in lists for item in li.items)]
    found = [d for d in map(definition, units) if d is not None]
    return Structure(sections, lists, found, [q for s in units for q in quantities(document, s)])
