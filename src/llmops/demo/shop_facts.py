"""Facts of the demo shop that its templates (demo/templates.py) read: reviews and products.

Reviews (`[R0001] 商品：X | 评分：4/5 …` / `Product: X | Rating: 4/5 …` followed by the text) come from the
documents; the products are the structured facts the preset documents were generated from (`products.json`),
kept when the documents mention their name. The documents' FAQ pairs and paragraphs are data/doc_facts.py's.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmops.data.doc_facts import Facts, extract_facts, is_chinese

_REVIEW = re.compile(r"\[R\d+\]\s*(?:商品|Product)\s*[:：]\s*(?P<product>[^|\n]+?)\s*\|\s*(?:评分|Rating)\s*[:：]\s*"
                     r"(?P<rating>[1-5])\s*/\s*5[^\n]*\n(?P<text>[^\n\[]+)")


@dataclass(frozen=True)
class Review:
    product: str
    rating: int
    text: str

    @property
    def zh(self) -> bool:
        return is_chinese(self.text)


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
class ShopFacts:
    documents: Facts  # the generic facts: FAQ pairs and paragraphs
    reviews: list[Review] = field(default_factory=list)
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


def extract_shop_facts(texts: Sequence[str], products: Sequence[Mapping[str, Any]] = ()) -> ShopFacts:
    """The generic facts and the reviews of `texts`; the `products` (raw dicts) the texts mention."""
    corpus = list(texts)
    joined = "\n".join(corpus)
    reviews = [Review(m["product"].strip(), int(m["rating"]), m["text"].strip())
               for text in corpus for m in _REVIEW.finditer(text)]
    parsed = [_product(raw) for raw in products]
    mentioned = [p for p in parsed if p is not None and p.name in joined]
    return ShopFacts(extract_facts(corpus), reviews, mentioned)
