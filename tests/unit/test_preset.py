"""The bundled preset data: reproducible, bilingual, consistent facts, valid seed tasks."""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmops.data.seed_tasks import TASK_TYPES
from llmops.demo.preset import (
    copy_preset_documents,
    load_products,
    load_seed_tasks,
    preset_dir,
    preset_documents,
    preset_texts,
)
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SENTENCE_END = re.compile(r"[。；;！？!?\n]|\.(?=\s|$)")
PRICE = re.compile(r"¥(\d+)")
WARRANTY = re.compile(r"(\d+) ?个月|(\d+)-month|(\d+) months")
DAYS = re.compile(r"(\d+) ?(?:天|-day|days)")
HAN = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _first(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return None if match is None else int(next(g for g in match.groups() if g is not None))


def _name_pattern(products: list[dict[str, Any]]) -> re.Pattern[str]:
    names = sorted((re.escape(p["name"]) for p in products), key=len, reverse=True)
    return re.compile(rf"(?<![\w])({'|'.join(names)})(?![\w])")


def _fact_errors(text: str, where: str, products: dict[str, dict[str, Any]], names: re.Pattern[str],
                 checked: Counter[str]) -> list[str]:
    """In every sentence, the first price/warranty/return window after a product's name must be its own."""
    errors = []
    for sentence in SENTENCE_END.split(text):
        for match in names.finditer(sentence):
            product, after = products[match.group(1)], sentence[match.end():]
            price, warranty = _first(PRICE, after), _first(WARRANTY, after)
            days = _first(DAYS, after) if ("退" in sentence or "return" in sentence) else None
            for fact, value in (("price", price), ("warranty_months", warranty), ("return_days", days)):
                if value is not None and value != product[fact]:
                    errors.append(f"{where}: {product['name']} {fact} {value} != {product[fact]}: {sentence}")
            if price is not None:
                checked[product["name"]] += 1
    return errors


def test_generator_reproduces_the_bundled_files_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "preset"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_preset.py"), "--out", str(out)],
                   check=True, capture_output=True)
    bundled = {k: v for k, v in _files(preset_dir()).items() if "__pycache__" not in k}
    generated = _files(out)
    assert sorted(generated) == sorted(bundled)
    changed = [name for name in generated if generated[name] != bundled[name]]
    assert changed == []


def test_documents_are_a_few_hundred_kb_in_chinese_english_and_mixed() -> None:
    docs = preset_documents()
    assert {p.suffix for p in docs} == {".md", ".txt"}
    assert 300_000 <= sum(p.stat().st_size for p in docs) <= 500_000
    shares = []
    for text in preset_texts():
        han, latin = len(HAN.findall(text)), len(LATIN.findall(text))
        shares.append(han / (han + latin))
    assert any(s > 0.6 for s in shares), "a mostly Chinese document"
    assert any(s < 0.05 for s in shares), "a mostly English document"
    assert any(0.1 < s < 0.6 for s in shares), "a mixed document"


def test_products_have_unique_names_and_complete_facts() -> None:
    products = load_products()
    assert 40 <= len(products) <= 60
    names = [p["name"] for p in products]
    assert len(set(names)) == len(names)
    assert {p["category"] for p in products} >= {"electronics", "home", "outdoor"}
    for p in products:
        assert isinstance(p["price"], int) and p["price"] > 0
        assert p["warranty_months"] in (6, 12, 18, 24, 36)
        assert p["return_days"] in (7, 15, 30)
        assert p["specs"] and all({"name_zh", "name_en", "value"} <= set(s) for s in p["specs"])
        assert 1 <= p["average_rating"] <= 5 and p["review_count"] > 0


def test_facts_are_identical_wherever_a_product_is_named() -> None:
    products = {p["name"]: p for p in load_products()}
    names = _name_pattern(list(products.values()))
    checked: Counter[str] = Counter()
    errors = []
    for path, text in zip(preset_documents(), preset_texts(), strict=True):
        errors += _fact_errors(text, path.name, products, names, checked)
    for task in load_seed_tasks():
        for text in (task.instruction, task.input, task.output):
            errors += _fact_errors(text, task.id, products, names, checked)
    assert errors == []
    assert all(checked[name] >= 3 for name in products), "each price is stated in catalogue and both manuals"


def test_bundled_seed_tasks_cover_the_six_task_types() -> None:
    tasks = load_seed_tasks()
    counts = Counter(t.task_type for t in tasks)
    assert len(tasks) >= 36
    assert set(counts) == set(TASK_TYPES)
    assert min(counts.values()) >= 6
    assert len({t.instruction + t.input for t in tasks}) == len(tasks)
    assert all(t.is_classification == (t.task_type == "classification") for t in tasks)


def test_review_classification_labels_follow_the_review_ratings() -> None:
    ratings = {}
    for text in preset_texts():
        for rating, body in re.findall(r"^\[R\d+\][^\n]*?(\d)/5[^\n]*\n(.+)$", text, flags=re.MULTILINE):
            ratings[body] = int(rating)
    reviewed = [t for t in load_seed_tasks() if t.input in ratings]
    assert len(reviewed) >= 4
    for task in reviewed:
        positive = ratings[task.input] >= 4
        assert task.output in (("好评", "positive") if positive else ("差评", "negative"))


ROW = {"id": "s1", "task_type": "qa", "instruction": "q", "input": "", "output": "a", "is_classification": False}


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({**ROW, "task_type": "poetry"}, "task_type"),
        ({**ROW, "output": ""}, "output"),
        ({k: v for k, v in ROW.items() if k != "instruction"}, "instruction"),
        ({**ROW, "is_classification": "no"}, "is_classification"),
        ({**ROW, "is_classification": True}, "is_classification"),
        ({**ROW, "colour": "red"}, "colour"),
        ({**ROW, "id": "s0"}, "id"),
    ],
)
def test_bad_seed_task_names_file_line_and_field(tmp_path: Path, line: dict[str, Any], field: str) -> None:
    path = tmp_path / "seeds.jsonl"
    first = {**ROW, "id": "s0"}
    path.write_text(json.dumps(first) + "\n\n" + json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(LLMOpsError, match=re.escape(f"{path}:3: {field}:")):
        load_seed_tasks(path)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(json.dumps(ROW) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(LLMOpsError, match=re.escape(f"{path}:2: invalid JSON")):
        load_seed_tasks(path)


def test_copy_preset_documents_into_a_workspace(workspace: Workspace) -> None:
    dest = workspace.root / "documents" / "preset"
    (dest).mkdir(parents=True)
    (dest / "mine.txt").write_text("keep me", encoding="utf-8")
    copies = copy_preset_documents(dest)
    again = copy_preset_documents(dest)
    assert copies == again == [dest / p.name for p in preset_documents()]
    assert all(c.read_bytes() == p.read_bytes() for c, p in zip(copies, preset_documents(), strict=True))
    assert (dest / "mine.txt").read_text(encoding="utf-8") == "keep me"
