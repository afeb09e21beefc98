"""Template-mode Self-Instruct (the spec's `use_mock=True`): tasks of the six types built from document facts.

A template set names what to read out of the documents (`facts`), the makers of each task type (each
computes its answer from those facts, or gives None when they do not allow one) and the polite closings an
answer may end with. `GENERIC_TEMPLATES` knows any workspace's documents and makes all six types from their
own content (FAQ pairs, paragraphs; headings, lists, definitions, quantities: doc_templates.py); the demo
shop's set (products, reviews …) is demo/templates.py's and is passed in by the demo.
"""

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from llmops.data import doc_templates as doc
from llmops.data.doc_facts import Facts, extract_facts, is_chinese
from llmops.data.example import Example
from llmops.data.seed_tasks import TASK_TYPES as SEED_TASK_TYPES

TASK_TYPES = tuple(SEED_TASK_TYPES)
CLOSINGS_EN = ("Hope this helps!", "Have a great day!")
CLOSINGS_ZH = ("希望对您有帮助！", "祝您一切顺利！")
F = TypeVar("F")


Maker = Callable[[random.Random, F], Example | None]


def paragraph_summary(rng: random.Random, facts: Facts) -> Example | None:
    """Lead sentence of a prose paragraph."""
    if not facts.paragraphs:
        return None
    paragraph = rng.choice(facts.paragraphs)
    lead = paragraph.replace("。", "。\n").replace(". ", ".\n").splitlines()[0].strip()
    if is_chinese(paragraph):
        return Example("summarization", "用一句话概括下面这段话的主旨", paragraph, lead)
    return Example("summarization", "Summarise the following paragraph in one sentence.", paragraph, lead)


def faq_answer(rng: random.Random, facts: Facts) -> Example | None:
    return Example("qa", (faq := rng.choice(facts.faqs)).question, "", faq.answer) if facts.faqs else None


@dataclass(frozen=True)
class TemplateSet(Generic[F]):
    """What template mode reads out of the documents' texts, the makers of each task type, the closings."""

    facts: Callable[[Sequence[str]], F]
    makers: Mapping[str, tuple[Maker[F], ...]]
    closings_en: tuple[str, ...] = CLOSINGS_EN
    closings_zh: tuple[str, ...] = CLOSINGS_ZH


GENERIC_TEMPLATES: TemplateSet[Facts] = TemplateSet(extract_facts, {
    "classification": (doc.section_heading, doc.definition_term),
    "generation": (doc.section_title, doc.list_continuation, doc.next_sentence),
    "summarization": (paragraph_summary, doc.section_summary, doc.section_key_points),
    "qa": (faq_answer, doc.definition_question, doc.quantity_question),
    "rewrite": (doc.list_to_sentence, doc.sentence_to_bullets),
    "reasoning": (doc.quantity_arithmetic, doc.step_order),
})


def make_example(task_type: str, rng: random.Random, facts: F, makers: Mapping[str, Sequence[Maker[F]]]
                 ) -> Example | None:
    """One example of `task_type` from one of `makers[task_type]` picked at random (None when the facts do not
    allow one, or no maker builds that type)."""
    candidates = list(makers.get(task_type, ()))
    rng.shuffle(candidates)
    for maker in candidates:
        example = maker(rng, facts)
        if example is not None:
            return example
    return None
