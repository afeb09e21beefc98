"""Template-mode Self-Instruct with the demo shop's templates: grounded, diverse, six task types, closings at the
asked rate."""

import json
import re
from itertools import combinations

import pytest
from rouge_score import rouge_scorer

from llmops.data.formats import record_problems
from llmops.data.rouge import RougeTokenizer
from llmops.data.self_instruct import SelfInstructGenerator, generate_sft_dataset
from llmops.data.self_instruct_llm import parse_instructions, passes_filters
from llmops.data.templates import TASK_TYPES
from llmops.demo.preset import load_products, preset_documents, preset_texts
from llmops.demo.templates import shop_templates
from llmops.errors import LLMOpsError
from llmops.workspace import Workspace

SHOP = shop_templates(load_products())
CLOSINGS = SHOP.closings_en + SHOP.closings_zh


@pytest.fixture(scope="module")
def generated() -> tuple[SelfInstructGenerator, list[dict[str, list[dict[str, str]]]]]:
    generator = SelfInstructGenerator(preset_texts(), templates=SHOP, seed=1)
    return generator, generator.generate_instructions(200, use_mock=True)


def _pair(record: dict[str, list[dict[str, str]]]) -> tuple[str, str]:
    return record["messages"][-2]["content"], record["messages"][-1]["content"]


def test_200_instructions_cover_six_types_with_few_near_duplicates(generated: tuple) -> None:
    generator, data = generated
    assert len(data) == 200
    assert all(record_problems(record, "messages") == [] for record in data)
    assert set(generator.stats.by_type) == set(TASK_TYPES)
    assert min(generator.stats.by_type.values()) >= 25
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=RougeTokenizer())  # the reference implementation
    prompts = [_pair(record)[0] for record in data]
    near = {j for i, j in combinations(range(len(prompts)), 2)
            if scorer.score(prompts[i], prompts[j])["rougeL"].fmeasure >= 0.7}
    assert len(near) / len(prompts) < 0.05


def test_closing_phrases_at_the_asked_rate(generated: tuple) -> None:
    _, data = generated
    closed = [answer for _, answer in map(_pair, data) if answer.endswith(CLOSINGS)]
    assert len(closed) == 30  # closing_rate 0.15 of 200


def test_answers_follow_from_the_product_facts(generated: tuple) -> None:
    _, data = generated
    products = {p["name"]: p for p in load_products()}
    checked = 0
    for prompt, answer in map(_pair, data):
        if match := re.fullmatch(r"How much does the (.+) cost\?", prompt):
            assert f"¥{products[match[1]]['price']}" in answer
            checked += 1
        for items, total in re.findall(r"^((?:¥\d+ ?× ?\d+(?: \+ )?)+) = ¥(\d+)", answer):
            assert sum(int(p) * int(n) for p, n in re.findall(r"¥(\d+) ?× ?(\d+)", items)) == int(total)
            checked += 1
        if match := re.match(r"The (.+?) has a (\d+)-month warranty", answer):
            assert products[match[1]]["warranty_months"] == int(match[2])
            checked += 1
    assert checked >= 5


def test_generation_is_deterministic_by_seed() -> None:
    texts = preset_texts()
    first = SelfInstructGenerator(texts, templates=SHOP, seed=3).generate_instructions(30)
    assert SelfInstructGenerator(texts, templates=SHOP, seed=3).generate_instructions(30) == first
    assert SelfInstructGenerator(texts, templates=SHOP, seed=4).generate_instructions(30) != first


def test_system_prompt_and_closing_rate_options() -> None:
    generator = SelfInstructGenerator(preset_texts(), templates=SHOP, system_prompt="Be kind.", closing_rate=0.0)
    data = generator.generate_instructions(12)
    assert all(r["messages"][0] == {"role": "system", "content": "Be kind."} for r in data)
    assert not any(_pair(r)[1].endswith(CLOSINGS) for r in data)
    with pytest.raises(LLMOpsError, match="closing_rate"):
        SelfInstructGenerator([], closing_rate=1.5)


def test_documents_without_facts_are_a_clear_error() -> None:
    with pytest.raises(LLMOpsError, match="nothing to build tasks from"):
        SelfInstructGenerator(["short"], templates=SHOP).generate_instructions(5)


def test_generate_sft_dataset_writes_and_registers(workspace: Workspace) -> None:
    report = generate_sft_dataset(workspace, 24, documents=preset_documents(), templates=SHOP)
    data = json.loads(report.path.read_text())
    assert len(data) == 24 == report.dataset.rows
    assert report.path.parent == workspace.stage_data_dir("sft") and report.path.name.startswith("sft_data_")
    entry = json.loads(workspace.dataset_info_path.read_text())[report.dataset.name]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "messages"}
    assert entry["tags"]["role_tag"] == "role" and entry["tags"]["assistant_tag"] == "assistant"


def test_save_data_refuses_bad_records(workspace: Workspace) -> None:
    generator = SelfInstructGenerator()
    path = workspace.root / "out.json"
    with pytest.raises(LLMOpsError, match=r"out.json: \[0\].messages\[0\].role"):
        generator.save_data([{"messages": [{"role": "bot", "content": "x"}]}], path)
    assert not path.exists()


def test_bootstrap_parsing_and_filters() -> None:
    assert parse_instructions("Write a haiku about tea.\n10. 总结下面的评价\n11.   Translate it \n") == [
        "Write a haiku about tea.", "总结下面的评价", "Translate it"]
    assert passes_filters("Summarise the review below in one sentence.")
    assert passes_filters("用一句话总结这条评价")
    assert not passes_filters("Draw a picture of the product.")
    assert not passes_filters("Describe this image in detail please.")
    assert not passes_filters("Hi")
    assert not passes_filters("- Summarise the review below.")
