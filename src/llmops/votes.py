"""One vote vocabulary for a blind A/B comparison, from HTTP to the preference store, the judges and the ratings.

`a` (answer A is better), `b`, `tie` (both good) or `both_bad`; stored as these values in `battles.vote` and
`votes.choice`. `parse_vote` also reads the spec's spelling (`collect_preference(choice="A")`), in any case.
"""

from enum import StrEnum
from typing import TypeVar

from llmops.errors import LLMOpsError

T = TypeVar("T")


class Vote(StrEnum):
    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"

    @property
    def decisive(self) -> bool:
        """Whether the vote prefers one answer (a or b): only these give a preference pair."""
        return self in (Vote.A, Vote.B)

    @property
    def score_a(self) -> float:
        """Model A's score in a pairwise rating: 1 when A won, 0 when B won, 0.5 for a tie or both bad."""
        return {Vote.A: 1.0, Vote.B: 0.0}.get(self, 0.5)

    def chosen_rejected(self, a: T, b: T) -> tuple[T, T] | None:
        """(chosen, rejected) of a decisive vote on answers `a` and `b`; None for a tie or both bad."""
        if not self.decisive:
            return None
        return (a, b) if self is Vote.A else (b, a)


def parse_vote(value: object, field: str = "vote") -> Vote:
    """`value` as a Vote: a, b, tie or both_bad in any case, so the spec's "A" and "B" too; an LLMOpsError naming
    `field` for anything else."""
    if isinstance(value, str):
        try:
            return Vote(value.strip().lower())
        except ValueError:
            pass
    raise LLMOpsError(f"{field} {value!r}: expected one of {', '.join(Vote)} (A and B are read as a and b)")
