"""Generic template Self-Instruct makes all six task types out of any documents' own content (headings,
definitions, lists, numbers, sentences): each answer is read out of the document or computed from it, and
none says a word of the demo shop. The documents are a licence (markdown), a Chinese recipe (markdown) and a
plain-text README without any markdown."""

import json
import random

import pytest

from generic_docs import LICENCE_MD, README_TXT, RECIPE_MD, grounded, shop_words
from llmops.data.doc_facts import extract_facts
from llmops.data.doc_templates import quantity_arithmetic, step_order
from llmops.data.self_instruct import SelfInstructGenerator, generate_sft_dataset
from llmops.data.templates import TASK_TYPES
from llmops.workspace import Workspace


@pytest.mark.parametrize("document", [LICENCE_MD, RECIPE_MD, README_TXT], ids=["licence", "recipe", "readme"])
def test_template_mode_gives_all_six_types_read_out_of_the_document(document: str) -> None:
    generator = SelfInstructGenerator([document], closing_rate=0.0, seed=0)
    data = generator.generate_instructions(200)
    assert set(generator.stats.by_type) == set(TASK_TYPES)
    assert sum(generator.stats.by_type.values()) == len(data) >= 25  # the ROUGE-L filter leaves a fair share
    assert generator.stats.rejected_similar > 0
    assert shop_words(json.dumps(data, ensure_ascii=False)) == []
    ungrounded = [r["messages"][-1]["content"] for r in data if not grounded(r["messages"][-1]["content"], document)]
    assert ungrounded == []


def test_the_facts_of_a_markdown_document() -> None:
    facts = extract_facts([LICENCE_MD])
    assert [s.heading for s in facts.sections] == ["Definitions", "Permissions", "Conditions", "Termination"]
    assert [d.term for d in facts.definitions] == ["Software", "contributor", "Licensor", "Derived work"]
    assert [(li.heading, len(li.items), li.ordered) for li in facts.lists] == [("Definitions", 2, False),
                                                                              ("Conditions", 4, True)]
    assert [q.written for q in facts.quantities] == ["30 days", "60 days", "14 days"]
    recipe = extract_facts([RECIPE_MD])
    assert [q.written for q in recipe.quantities if q.unit == "克"] == ["300 克", "5 克", "2 克"]
    assert recipe.lists[1].heading == "步骤" and recipe.lists[1].ordered


def test_reasoning_answers_are_computed_from_the_documents_quantities() -> None:
    facts = extract_facts([RECIPE_MD])
    answers = {quantity_arithmetic(random.Random(seed), facts).output for seed in range(40)}  # type: ignore[union-attr]
    assert "300 + 5 = 305克" in answers or "300 - 5 = 295克" in answers
    assert all(grounded(a, RECIPE_MD) for a in answers)
    order = step_order(random.Random(0), facts)
    assert order is not None and order.output.splitlines()[0] == "1. 把鸡蛋打散，加少许盐搅匀。"
    assert order.input != "\n".join(f"- {line.split('. ', 1)[1]}" for line in order.output.splitlines())


def test_the_grounding_check_catches_a_made_up_answer() -> None:
    assert grounded("30 + 60 = 90 days", LICENCE_MD)
    assert not grounded("30 + 60 = 100 days", LICENCE_MD)
    assert not grounded("45 + 60 = 105 days", LICENCE_MD)
    assert not grounded("The licence ends after 45 days.", LICENCE_MD)


def test_the_command_counts_every_type_on_a_workspace_of_other_documents(workspace: Workspace) -> None:
    folder = workspace.documents_dir / "mine"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "licence.md").write_text(LICENCE_MD, encoding="utf-8")
    (folder / "recipe.md").write_text(RECIPE_MD, encoding="utf-8")
    (folder / "readme.txt").write_text(README_TXT, encoding="utf-8")
    report = generate_sft_dataset(workspace, 200, closing_rate=0.0)
    assert set(report.stats.by_type) == set(TASK_TYPES) and report.dataset.rows == sum(report.stats.by_type.values())
    assert report.dataset.rows >= 80
