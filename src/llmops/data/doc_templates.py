"""Generic template makers of every task type over any documents' structure (doc_structure.py).

Each answer is read out of the documents or computed from them (correct by construction), in the language
of the passage it comes from: the heading a passage stands under, the term a definition defines, the
sentence that comes next, a section's lead sentences, a definition, a quantity, a list as a sentence, the
items of an enumeration, a sum or difference of two quantities with the same unit, a numbered list's order.
"""

import random
import re
from collections.abc import Sequence
from typing import TypeVar

from llmops.data.doc_facts import Facts, is_chinese
from llmops.data.doc_structure import DocList, Quantity, sentences
from llmops.data.example import Example

T = TypeVar("T")
_ENUMERATION = re.compile(r"\b(?P<items>[A-Za-z-]{2,}(?:, [A-Za-z-]{2,})+,? (?:and|or) [A-Za-z-]{2,})\b")
MAX_CHOICES = 4


def _pick(rng: random.Random, items: Sequence[T]) -> T | None:
    return rng.choice(items) if items else None


def _phrase(rng: random.Random, zh: bool, en: Sequence[str], chinese: Sequence[str]) -> str:
    return rng.choice(chinese if zh else en)


def _choices(rng: random.Random, answer: str, others: Sequence[str]) -> list[str]:
    pool = sorted({o for o in others if o != answer})
    picked = [answer, *rng.sample(pool, min(len(pool), MAX_CHOICES - 1))]
    rng.shuffle(picked)
    return picked


def _bullets(items: Sequence[str], ordered: bool = False, start: int = 1) -> str:
    return "\n".join(f"{start + i}. {item}" if ordered else f"- {item}" for i, item in enumerate(items))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{round(value, 6):g}"


def section_heading(rng: random.Random, facts: Facts) -> Example | None:
    """Which heading of its document a passage stands under (classification)."""
    sections = [s for s in facts.sections if s.paragraphs or s.lists]
    section = _pick(rng, sections)
    headings = [s.heading for s in sections if section and s.document == section.document]
    if section is None or len(set(headings)) < 2:
        return None
    passage = rng.choice([*section.paragraphs, *(_bullets(items) for items in section.lists)])
    zh, choices = is_chinese(passage), _choices(rng, section.heading, headings)
    instruction = _phrase(rng, zh, ["Which section of the document does this passage belong to? Choose one of: ",
                                    "Classify the passage under one of these headings: "],
                          ["下面这段文字属于文档的哪一节？请从以下选项中选择：", "请判断这段内容属于哪个标题："])
    return Example("classification", instruction + ("、" if zh else "; ").join(choices), passage, section.heading)


def definition_term(rng: random.Random, facts: Facts) -> Example | None:
    """Which of the documents' defined terms a definition (its term blanked out) defines (classification)."""
    found = _pick(rng, facts.definitions)
    if found is None:
        return None
    terms = [d.term for d in facts.definitions if is_chinese(d.sentence) == is_chinese(found.sentence)]
    masked = re.sub(re.escape(found.term), "___", found.sentence, flags=re.IGNORECASE)
    if len(set(terms)) < 2 or masked == found.sentence:
        return None
    zh, choices = is_chinese(found.sentence), _choices(rng, found.term, terms)
    instruction = _phrase(rng, zh, ["Which term does this definition describe? Choose one of: ",
                                    "Fill the blank with the right term, one of: "],
                          ["下面的定义说的是哪个术语？请从以下选项中选择：", "空白处应填哪个词？可选："])
    return Example("classification", instruction + ("、" if zh else "; ").join(choices), masked, found.term)


def section_title(rng: random.Random, facts: Facts) -> Example | None:
    """A heading for a section's text: its real heading (generation)."""
    section = _pick(rng, [s for s in facts.sections if len(s.text) >= 40])
    if section is None:
        return None
    instruction = _phrase(rng, is_chinese(section.text), ["Write a short heading for the following text.",
                                                          "Give this section a title."],
                          ["为下面这段内容写一个简短的标题", "给这一节起一个标题"])
    return Example("generation", instruction, section.text, section.heading)


def list_continuation(rng: random.Random, facts: Facts) -> Example | None:
    """The rest of a list, from its first items (generation)."""
    doc_list = _pick(rng, [li for li in facts.lists if len(li.items) >= 3])
    if doc_list is None:
        return None
    shown = rng.randrange(2, len(doc_list.items))
    items = doc_list.items
    instruction = _phrase(rng, is_chinese(" ".join(items)), ["Continue this list with its remaining items.",
                                                             "Complete the list below."],
                          ["把下面的列表补充完整", "续写这个列表剩下的条目"])
    return Example("generation", instruction, _bullets(items[:shown], doc_list.ordered),
                   _bullets(items[shown:], doc_list.ordered, shown + 1))


def next_sentence(rng: random.Random, facts: Facts) -> Example | None:
    """The sentence that follows the first ones of a paragraph (generation)."""
    parts = _pick(rng, [p for p in map(sentences, facts.paragraphs + _section_paragraphs(facts)) if len(p) >= 2])
    if parts is None:
        return None
    cut = rng.randrange(1, len(parts))
    zh = is_chinese(parts[0])
    instruction = _phrase(rng, zh, ["Write the sentence that comes next in this passage.",
                                    "Continue the text below with one sentence."],
                          ["写出这段话接下来的一句", "用一句话续写下面的文字"])
    return Example("generation", instruction, ("" if zh else " ").join(parts[:cut]), parts[cut])


def _section_paragraphs(facts: Facts) -> list[str]:
    return [p for s in facts.sections for p in s.paragraphs if p not in facts.paragraphs]


def section_key_points(rng: random.Random, facts: Facts) -> Example | None:
    """A section's key points: the lead sentence of each of its paragraphs (summarization)."""
    section = _pick(rng, [s for s in facts.sections if len([p for p in s.paragraphs if sentences(p)]) >= 2])
    if section is None:
        return None
    leads = [sentences(p)[0] for p in section.paragraphs if sentences(p)]
    instruction = _phrase(rng, is_chinese(section.text), ["List the key points of the section “{}”.",
                                                          "Summarise the section “{}” as bullet points."],
                          ["列出“{}”这一节的要点", "用要点概括“{}”这一节"])
    return Example("summarization", instruction.format(section.heading), section.text, _bullets(leads))


def section_summary(rng: random.Random, facts: Facts) -> Example | None:
    """A section in one sentence: the lead sentence of its first paragraph (summarization)."""
    section = _pick(rng, [s for s in facts.sections if s.paragraphs and len(sentences(s.text)) >= 2])
    if section is None or not (leads := sentences(section.paragraphs[0])):
        return None
    instruction = _phrase(rng, is_chinese(section.text), ["Summarise the section “{}” in one sentence.",
                                                          "What is the section “{}” about? Answer in one sentence."],
                          ["用一句话概括“{}”这一节", "“{}”这一节主要讲了什么？请用一句话回答。"])
    return Example("summarization", instruction.format(section.heading), section.text, leads[0])


def definition_question(rng: random.Random, facts: Facts) -> Example | None:
    """What a defined term is: its definition (qa)."""
    found = _pick(rng, facts.definitions)
    if found is None:
        return None
    question = _phrase(rng, is_chinese(found.sentence), ["What is {}?", "What does “{}” mean?"],
                       ["{}是什么？", "什么是{}？"])
    return Example("qa", question.format(found.term), "", found.sentence)


def quantity_question(rng: random.Random, facts: Facts) -> Example | None:
    """The quantity a sentence states, the sentence shown with the number blanked out (qa)."""
    quantity = _pick(rng, facts.quantities)
    if quantity is None:
        return None
    zh = is_chinese(quantity.sentence)
    masked = quantity.sentence.replace(quantity.written, "___" if zh else f"___ {quantity.unit}", 1)
    question = _phrase(rng, zh, ["According to the document, how many {} go in the blank: “{}”",
                                 "How much is it, in {}, in this sentence of the document: “{}”"],
                       ["根据文档，空白处是多少{}：“{}”", "文档中这句话说的是多少{}？“{}”"])
    return Example("qa", question.format(quantity.unit, masked), "", quantity.written)


def list_to_sentence(rng: random.Random, facts: Facts) -> Example | None:
    """A list rewritten as one sentence (rewrite)."""
    doc_list = _pick(rng, [li for li in facts.lists if 2 <= len(li.items) <= 8])
    if doc_list is None:
        return None
    items = [item.rstrip(".;,。；，") for item in doc_list.items]
    zh = is_chinese(" ".join(items))
    instruction = _phrase(rng, zh, ["Rewrite this list as one sentence.", "Turn the list below into a sentence."],
                          ["把下面的列表改写成一句话", "将这个列表改写为一段连贯的句子"])
    return Example("rewrite", instruction, _bullets(doc_list.items, doc_list.ordered), _sentence(items, doc_list, zh))


def _sentence(items: list[str], doc_list: DocList, zh: bool) -> str:
    if zh:
        if doc_list.ordered:
            return f"先{items[0]}，{''.join(f'然后{i}，' for i in items[1:-1])}最后{items[-1]}。"
        return "；".join(items) + "。"
    if doc_list.ordered:
        return f"First {items[0]}, {''.join(f'then {i}, ' for i in items[1:-1])}and finally {items[-1]}."
    return f"{', '.join(items[:-1])} and {items[-1]}."


def sentence_to_bullets(rng: random.Random, facts: Facts) -> Example | None:
    """The items a sentence enumerates ("use, copy and modify") as a bullet list (rewrite)."""
    found = [(s, m["items"]) for p in facts.paragraphs + _section_paragraphs(facts) for s in sentences(p)
             if (m := _ENUMERATION.search(s))]
    picked = _pick(rng, found)
    if picked is None:
        return None
    items = re.split(r",? (?:and|or) |, ", picked[1])
    instruction = rng.choice(["Rewrite the items this sentence lists as a bullet list.",
                              "Pull out the enumerated items of the sentence below as bullet points."])
    return Example("rewrite", instruction, picked[0], _bullets(items))


def _quantity_pairs(facts: Facts) -> list[tuple[Quantity, Quantity]]:
    qs = facts.quantities
    return [(a, b) for i, a in enumerate(qs) for b in qs[i + 1:]
            if a.document == b.document and a.unit == b.unit and (a.sentence, a.written) != (b.sentence, b.written)]


def quantity_arithmetic(rng: random.Random, facts: Facts) -> Example | None:
    """The sum or the difference of two quantities of one document with the same unit (reasoning)."""
    pair = _pick(rng, _quantity_pairs(facts))
    if pair is None:
        return None
    big, small = sorted(pair, key=lambda q: q.value, reverse=True)
    zh = is_chinese(big.sentence)
    quoted = "”“".join(dict.fromkeys([pair[0].sentence, pair[1].sentence]))
    unit = f"{'' if zh else ' '}{big.unit}"
    if rng.random() < 0.5 and big.unit != "%":
        question = ["文档中写道：“{}”。{}和{}加起来一共是多少？", "The document says: “{}”. What is {} plus {}?"]
        answer = f"{_number(big.value)} + {_number(small.value)} = {_number(big.value + small.value)}{unit}"
    else:
        question = ["文档中写道：“{}”。{}比{}多多少？", "The document says: “{}”. How much more is {} than {}?"]
        answer = f"{_number(big.value)} - {_number(small.value)} = {_number(big.value - small.value)}{unit}"
    return Example("reasoning", question[0 if zh else 1].format(quoted, big.written, small.written), "", answer)


def step_order(rng: random.Random, facts: Facts) -> Example | None:
    """A numbered list's steps put back in order from a shuffled copy (reasoning)."""
    doc_list = _pick(rng, [li for li in facts.lists if li.ordered and len(set(li.items)) >= 3])
    if doc_list is None:
        return None
    shuffled = list(doc_list.items)
    while shuffled == list(doc_list.items):
        rng.shuffle(shuffled)
    zh = is_chinese(" ".join(shuffled))
    instruction = _phrase(rng, zh, ["Put these steps{} in the right order.", "Order the following steps{}."],
                          ["把下面{}的条目按正确的顺序排列", "请给{}这些步骤排序"])
    where = (f"“{doc_list.heading}”一节" if zh else f" ({doc_list.heading})") if doc_list.heading else ""
    return Example("reasoning", instruction.format(where), _bullets(shuffled), _bullets(doc_list.items, True))
