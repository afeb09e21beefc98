"""Facts that template-mode Self-Instruct reads out of the workspace's documents.

Reviews (`[R0001] 商品：X | 评分：4/5 …` / `Product: X | Rating: 4/5 …` followed by the text), FAQ pairs
(`**问：…**` + `答：…` / `**Q: …**` + `A: …`), prose paragraphs, and, when structured product facts are
given (e.g. the preset's `products.json`), the products whose name the documents mention.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_REVIEW = re.compile(r"\[R\d+\]\s*(?:商品|Product)\s*[:：]\s*(?P<product>[^|\n]+?)\s*\|\s*(?:评分|Rating)\s*[:：]\s*"
                     r"(?P<rating>[1-5])\s*/\s*5[^\n]*\n(?P<text>[^\n\[]+)")
_FAQ = re.compile(r"\*\*\s*(?:问|Q)\s*[:：]\s*(?P<q>[^*\n]+?)\s*\*\*\s*\n\s*(?:答|A)\s*[:：]\s*(?P<a>[^\n]+)")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def is_chinese(text: str) -> bool:
    return len(_CJK.findall(text)) * 3 >= len(text.replace(" ", ""))


@dataclass(frozen=True)
class Review:
    product: str
    rating: int
    text: str

    @property
    def zh(self) -> bool:
        return is_chinese(self.text)


@dataclass(frozen=True)
class Faq:
    question: str
    answer: str

    @property
    def zh(self) -> bool:
        return is_chinese(self.question)


@dataclass(frozen=True)
class Spec:
    name_zh: str
    name_en: str
    value: str
    unit_zh: str
    unit_en: str

    def zh(self) -> str:
        return f"{self.value}{self.unit_zh}"

    def en(self) -> str:
        return f"{self.value} {self.unit_en}".strip()


@dataclass(frozen=True)
class Product:
    name: str
    name_zh: str  # full Chinese name, e.g. "Nimbus H2 降噪耳机"
    name_en: str
    category: str
    category_zh: str
    price: int
    warranty_months: int
    return_days: int
    specs: tuple[Spec, ...] = ()


@dataclass(frozen=True)
class Facts:
    reviews: list[Review] = field(default_factory=list)
    faqs: list[Faq] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)


def _product(raw: Mapping[str, Any]) -> Product | None:
    try:
        specs = tuple(Spec(str(s["name_zh"]), str(s["name_en"]), str(s["value"]), str(s.get("unit_zh", "")),
                           str(s.get("unit_en", ""))) for s in raw.get("specs", []))
        return Product(str(raw["name"]), str(raw.get("full_name_zh", raw["name"])),
                       str(raw.get("full_name_en", raw["name"])), str(raw["category"]),
                       str(raw.get("category_zh", raw["category"])), int(raw["price"]),
                       int(raw["warranty_months"]), int(raw["return_days"]), specs)
    except (KeyError, TypeError, ValueError):
        return None


def _paragraphs(text: str) -> list[str]:
    blocks = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text))
    return [b for b in blocks if len(b) >= 60 and not b.startswith(("#", "|", "-", "[", "*", "1."))]


def extract_facts(texts: Iterable[str], products: Sequence[Mapping[str, Any]] = ()) -> Facts:
    """Reviews, FAQ pairs and paragraphs of `texts`; the `products` (raw dicts) the texts mention."""
    corpus = list(texts)
    joined = "\n".join(corpus)
    reviews = [Review(m["product"].strip(), int(m["rating"]), m["text"].strip())
               for text in corpus for m in _REVIEW.finditer(text)]
    faqs = [Faq(m["q"].strip(), m["a"].strip()) for text in corpus for m in _FAQ.finditer(text)]
    paragraphs = [p for text in corpus for p in _paragraphs(text)]
    parsed = [_product(raw) for raw in products]
    mentioned = [p for p in parsed if p is not None and p.name in joined]
    return Facts(reviews, faqs, paragraphs, mentioned)
