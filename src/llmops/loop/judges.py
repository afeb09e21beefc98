"""Judges that need a service or the arena: an LLM on any OpenAI-compatible endpoint, and human arena votes.

Both follow `llmops.loop.evaluate.Judge`.
"""

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from openai import OpenAI, OpenAIError
from sqlalchemy import select

from llmops import db
from llmops.errors import LLMOpsError
from llmops.loop.evaluate import Comparison, EvalItem, Generate
from llmops.votes import Vote, parse_vote
from llmops.workspace import Workspace

JUDGE_PROMPT = """You compare two answers to the same question. Reply with exactly one word: A, B or tie.

Question:
{question}

Answer A:
{a}

Answer B:
{b}

Which answer is better?"""

_VERDICT = re.compile(r"\b(A|B|tie)\b", re.IGNORECASE)


def parse_verdict(text: str) -> Vote:
    """The first `A`, `B` or `tie` in the judge's reply as a vote; anything else is a tie."""
    match = _VERDICT.search(text)
    return Vote.TIE if match is None else parse_vote(match.group(1), "judge verdict")


class LLMJudge:
    """Asks a judge model twice, with the answers in both orders; agreeing verdicts decide, a disagreement is a tie."""

    name = "llm"

    def __init__(self, generate: Generate, client: OpenAI, model: str, samples_per_prompt: int = 1) -> None:
        self.generate = generate
        self.client = client
        self.model = model
        self.samples_per_prompt = samples_per_prompt

    def verdict(self, question: str, a: str, b: str) -> Vote:
        try:
            reply = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": JUDGE_PROMPT.format(question=question, a=a, b=b)}],
                temperature=0.0,
                max_tokens=8,
            )
        except OpenAIError as exc:
            raise LLMOpsError(f"LLM judge {self.model}: request failed: {exc}") from exc
        return parse_verdict(reply.choices[0].message.content or "")

    def judge_pair(self, question: str, new: str, old: str) -> Comparison:
        new_first = self.verdict(question, new, old).score_a
        new_second = 1 - self.verdict(question, old, new).score_a
        if new_first != new_second:
            return Comparison(question, 0.5, 0.5, consistent=False)
        return Comparison(question, new_first, 1 - new_first)

    def compare(self, old_model: str, new_model: str, items: Sequence[EvalItem]) -> list[Comparison]:
        prompts = [item.prompt for item in items] * self.samples_per_prompt
        new_answers = self.generate(new_model, prompts)
        old_answers = self.generate(old_model, prompts)
        return [self.judge_pair(p, n, o) for p, n, o in zip(prompts, new_answers, old_answers, strict=True)]


def _vote_scores(stored: str, new_is_a: bool) -> tuple[float, float]:
    """(new score, old score) of one arena vote (`battles.vote`); both bad scores 0 for both."""
    vote = parse_vote(stored, "battles.vote")
    if vote is Vote.BOTH_BAD:
        return 0.0, 0.0
    new = vote.score_a if new_is_a else 1 - vote.score_a
    return new, 1 - new


class HumanVoteJudge:
    """Arena battles between the two models that users voted on; limited to the items' prompts when given.

    A vote is consistent when it agrees with the majority of the votes on the same prompt."""

    name = "human"

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def compare(self, old_model: str, new_model: str, items: Sequence[EvalItem]) -> list[Comparison]:
        table = db.battles
        pair = (table.c.model_a.in_([old_model, new_model])) & (table.c.model_b.in_([old_model, new_model]))
        query = select(table.c.prompt, table.c.model_a, table.c.model_b, table.c.vote).where(
            pair, table.c.model_a != table.c.model_b, table.c.vote.is_not(None)
        )
        wanted = {item.prompt for item in items}
        with self.workspace.engine.connect() as conn:
            rows = [r for r in conn.execute(query) if not wanted or r.prompt in wanted]
        scored = [(r.prompt, *_vote_scores(r.vote, r.model_a == new_model)) for r in rows]
        by_prompt: dict[str, Counter[float]] = defaultdict(Counter)
        for prompt, new, old in scored:
            by_prompt[prompt][Comparison(prompt, new, old).outcome] += 1
        comparisons = []
        for prompt, new, old in scored:
            outcome = Comparison(prompt, new, old).outcome
            counts = by_prompt[prompt]
            comparisons.append(Comparison(prompt, new, old, consistent=counts[outcome] * 2 > sum(counts.values())))
        return comparisons
