"""Generate the bundled demo-shop data: docs/*.md|txt, products.json and seed_tasks.jsonl.

Deterministic (fixed seed), stdlib only, no network. Every fact (price, warranty, return window, specs)
comes from the one catalogue built here, so documents, products.json and seed tasks agree.

    python scripts/make_preset.py [--out DIR]      # default: src/llmops/demo/preset
"""

import argparse
import json
import random
from pathlib import Path
from typing import Any

from preset_docs import write_docs
from preset_tasks import seed_tasks
from preset_vocab import BRANDS, CATEGORIES, TYPES, Rng

SEED = 20241130
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "llmops" / "demo" / "preset"


def _price(base: int, tier: int, rng: Rng) -> int:
    """A shop price that ends in 9, rising with the tier."""
    raw = base * (0.75, 1.0, 1.4)[tier] * rng.uniform(0.95, 1.05)
    return max(19, int(raw / 10) * 10 + 9)


def _spec(name_zh: str, name_en: str, unit_zh: str, unit_en: str, value: Any) -> dict[str, Any]:
    """A spec with its value written out in each language ("28 小时" / "28 hours"; words come as (zh, en))."""
    value_zh, value_en = value if isinstance(value, tuple) else (value, value)
    return {"name_zh": name_zh, "name_en": name_en, "value": value_zh if isinstance(value, tuple) else value,
            "unit_zh": unit_zh, "unit_en": unit_en, "text_zh": f"{value_zh} {unit_zh}".strip(),
            "text_en": f"{value_en} {unit_en}".strip()}


def build_products(rng: Rng) -> list[dict[str, Any]]:
    products: list[dict[str, Any]] = []
    for type_index, kind in enumerate(TYPES):
        brand = BRANDS[type_index]
        letter = kind["letter"]
        digits = sorted(rng.sample(range(1, 10), 3))
        for tier, digit in enumerate(digits):
            name = f"{brand} {letter}{digit}"
            category = CATEGORIES[kind["category"]]
            specs = [_spec(zh, en, uzh, uen, values[tier]) for zh, en, uzh, uen, values in kind["specs"]]
            products.append(
                {
                    "id": f"P{len(products) + 1:03d}",
                    "name": name,
                    "brand": brand,
                    "category": kind["category"],
                    "category_zh": category["zh"],
                    "type": kind["key"],
                    "type_zh": kind["zh"],
                    "type_en": kind["en"],
                    "full_name_zh": f"{name} {kind['zh']}",
                    "full_name_en": f"{name} {kind['en']}",
                    "price": _price(kind["base_price"], tier, rng),
                    "currency": "CNY",
                    "warranty_months": kind["warranty"][tier],
                    "return_days": category["return_days"],
                    "specs": specs,
                }
            )
    return products


def write_files(out: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")


def generate(out: Path, seed: int = SEED) -> dict[str, str]:
    """Build every bundled file in memory, then write them under `out`; returns {relative path: text}."""
    rng = random.Random(seed)
    products = build_products(rng)
    files, reviews = write_docs(products, rng)
    for product in products:
        mine = [r["rating"] for r in reviews if r["product"] == product["name"]]
        product["review_count"] = len(mine)
        product["average_rating"] = round(sum(mine) / len(mine), 1)
    files["products.json"] = json.dumps(products, ensure_ascii=False, indent=2) + "\n"
    tasks = seed_tasks(products, reviews, rng)
    files["seed_tasks.jsonl"] = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks)
    write_files(out, files)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write into")
    args = parser.parse_args()
    files = generate(args.out)
    print(f"wrote {len(files)} files, {sum(len(t.encode()) for t in files.values())} bytes to {args.out}")


if __name__ == "__main__":
    main()
