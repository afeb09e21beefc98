"""The demo's simulated users: they chat, vote and give feedback by a hidden rubric, with noise.

The rubric — "the answer ends with a polite closing phrase" — lives only here: no training code reads
it. The SFT data meets it only sometimes (its template closes politely in ~15% of answers), so v1.0
meets it only sometimes and the preference pairs carry a real signal DPO can learn. A noisy user votes
at random (a or b) with probability `noise`; otherwise the answer that meets the rubric wins, and two
answers that both meet it (or both miss it) are a tie (or both_bad).
"""

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmops.loop.evaluate import Comparison, EvalItem, Generate
from llmops.votes import Vote

POLITE_CLOSINGS = (
    "hope this helps",
    "happy to help",
    "glad to help",
    "have a nice day",
    "have a great day",
    "thank you for shopping with us",
    "thanks for shopping with us",
    "thank you for your question",
    "let me know if you have any other questions",
    "let me know if you need anything else",
    "feel free to ask if you have more questions",
    "希望对您有帮助",
    "希望能帮到您",
    "祝您购物愉快",
    "祝您生活愉快",
    "感谢您的惠顾",
    "如有其他问题欢迎随时咨询",
)

_SENTENCE_END = re.compile(r"[.!?。！？]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Rubric:
    """Hidden quality rule: the last sentence of the answer holds a polite closing phrase."""

    closings: tuple[str, ...] = POLITE_CLOSINGS

    def met(self, answer: str) -> bool:
        sentences = [s for s in _SENTENCE_END.split(answer.lower()) if s.strip()]
        if not sentences:
            return False
        last = _SPACES.sub(" ", sentences[-1]).strip(" ,;:-'\"")
        return any(phrase in last for phrase in self.closings)

    def rate(self, answers: Sequence[str]) -> float:
        """Share of `answers` meeting the rubric."""
        return sum(self.met(a) for a in answers) / len(answers) if answers else 0.0


class SimulatedUsers:
    """Votes and thumbs of simulated users: the rubric decides, `noise` of the time a coin does."""

    def __init__(self, rubric: Rubric | None = None, noise: float = 0.1, seed: int = 0) -> None:
        self.rubric = rubric or Rubric()
        self.noise = noise
        self.rng = random.Random(seed)

    def vote(self, answer_a: str, answer_b: str) -> Vote:
        """The vote on two answers to one question."""
        if self.rng.random() < self.noise:
            return self.rng.choice((Vote.A, Vote.B))
        a, b = self.rubric.met(answer_a), self.rubric.met(answer_b)
        if a != b:
            return Vote.A if a else Vote.B
        return Vote.TIE if a else Vote.BOTH_BAD

    def thumbs(self, answer: str) -> int:
        """+1 or -1 for one answer (feedback on a chat completion)."""
        if self.rng.random() < self.noise:
            return self.rng.choice((1, -1))
        return 1 if self.rubric.met(answer) else -1


class RubricJudge:
    """The simulated users' rubric as an evaluation judge (without their noise): 1 if met, else 0."""

    name = "simulated_users_rubric"

    def __init__(self, generate: Generate, rubric: Rubric | None = None, samples_per_prompt: int = 4) -> None:
        self.generate = generate
        self.rubric = rubric or Rubric()
        self.samples_per_prompt = samples_per_prompt

    def compare(self, old_model: str, new_model: str, items: Sequence[EvalItem]) -> list[Comparison]:
        prompts = [item.prompt for item in items] * self.samples_per_prompt
        new_answers = self.generate(new_model, prompts)
        old_answers = self.generate(old_model, prompts)
        return [
            Comparison(prompt, float(self.rubric.met(new)), float(self.rubric.met(old)))
            for prompt, new, old in zip(prompts, new_answers, old_answers, strict=True)
        ]
