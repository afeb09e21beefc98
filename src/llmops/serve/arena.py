"""The blind A/B arena (spec 6.2): battles between two versions, one vote each, stored as preferences.

Pair policy: production against the candidate when a candidate is set, else two samples of production
(on-policy pairs for DPO); or the two servable chat versions the caller chose. Sides are shuffled (a chosen pair
may keep its order); the identities are revealed only with the vote. A vote marks
its battle and goes into the preference store (PreferenceCollector) with the battle id as vote id, in the
same transaction; votes are recorded in batches (`record_votes`) so that many votes share one durable commit.
A battle takes exactly one vote even when several gateway processes get votes for it at once (`_claim`).
"""

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from llmops import db
from llmops.data.preferences import PreferenceCollector
from llmops.errors import LLMOpsError
from llmops.inference.types import Message, Sampling
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.votes import Vote
from llmops.workspace import Workspace

if TYPE_CHECKING:  # the gateway's state holds the vote batcher of this module
    from llmops.serve.state import ServeState


@dataclass(frozen=True)
class Battle:
    id: str
    created_at: float
    user: str
    prompt: str
    model_a: str
    model_b: str
    response_a: str
    response_b: str
    sampling: dict[str, Any]
    vote: str | None = None  # a Vote's value once voted
    voted_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VoteRequest:
    battle_id: str
    vote: Vote


@dataclass(frozen=True)
class VoteResult:
    battle: Battle | None
    status: int  # 200, 404 (no such battle), 409 (already voted)
    error: str = ""


class NoPair(LLMOpsError):
    """There is no pair to battle: no production version, or a candidate alias naming no version (HTTP 404)."""


def chosen_version(workspace: Workspace, name: str, side: str) -> ModelVersion:
    """The version (or alias) `name` chosen for side `side` of a battle: a servable chat version, else NoPair."""
    try:
        version = registry.resolve(workspace, name)
    except LLMOpsError as exc:
        raise NoPair(f"{side}: {exc}") from exc
    if not registry.arena_ready(workspace, version):
        raise NoPair(f"{side} {name!r}: not a servable chat version (see `llmops models list`)")
    return version


def pick_pair(workspace: Workspace, rng: random.Random, chosen: tuple[str, str] | None = None,
              shuffle: bool = True) -> tuple[ModelVersion, ModelVersion]:
    """(left, right): the `chosen` pair (model_a, model_b), else production vs candidate, or production twice;
    in random order unless `shuffle` is False."""
    if chosen is not None:
        pair = [chosen_version(workspace, chosen[0], "model_a"), chosen_version(workspace, chosen[1], "model_b")]
    else:
        production = registry.resolve(workspace, "production")
        candidate_name = registry.aliases(workspace).get("candidate")
        if candidate_name is None or candidate_name == production.name:
            return production, production
        pair = [production, registry.get_version(workspace, candidate_name)]
    if shuffle:
        rng.shuffle(pair)
    return pair[0], pair[1]


def new_battle(prompt: str, user: str, models: tuple[str, str], responses: tuple[str, str],
               sampling: dict[str, Any]) -> Battle:
    return Battle(id=f"battle-{uuid.uuid4().hex}", created_at=time.time(), user=user, prompt=prompt,
                  model_a=models[0], model_b=models[1], response_a=responses[0], response_b=responses[1],
                  sampling=sampling)


def insert_battle(conn: Connection, battle: Battle) -> None:
    conn.execute(db.battles.insert().values(**battle.to_dict()))


async def run_battle(state: "ServeState", prompt: str, user: str, sampling: Sampling, rng: random.Random,
                     chosen: tuple[str, str] | None = None, shuffle: bool = True) -> Battle:
    """A battle on `prompt`: the pair of `pick_pair` (`chosen`, `shuffle` as there), both completions at once (each
    logged as a request of its version served to `user`), the battle stored before this returns. NoPair when
    there is nothing to battle."""
    try:
        left, right = pick_pair(state.workspace, rng, chosen, shuffle)
    except LLMOpsError as exc:
        raise NoPair(str(exc)) from exc
    messages: list[Message] = [{"role": "user", "content": prompt}]
    served = await asyncio.gather(state.complete(left, messages, sampling, user),
                                  state.complete(right, messages, sampling, user))
    battle = new_battle(prompt, user, (left.name, right.name), (served[0].completion.text, served[1].completion.text),
                        sampling.to_dict())
    await asyncio.wrap_future(state.writer.submit(lambda conn: insert_battle(conn, battle)))
    return battle


async def cast_vote(state: "ServeState", battle_id: str, vote: Vote) -> VoteResult:
    """Record `vote` on the battle `battle_id` through the gateway's vote batcher; an accepted one is counted in
    `llmops_arena_votes`."""
    result = await asyncio.wrap_future(state.votes.submit(VoteRequest(battle_id, vote)))
    if result.status == 200:
        state.metrics.votes.labels(choice=vote.value).inc()
    return result


def get_battle(workspace: Workspace, battle_id: str) -> Battle | None:
    with workspace.engine.connect() as conn:
        row = conn.execute(select(db.battles).where(db.battles.c.id == battle_id)).first()
    return None if row is None else Battle(**dict(row._mapping))


def _version_of(name: str) -> str:
    return name.rsplit("-", 1)[-1]


def vote_metadata(battle: Battle) -> dict[str, Any]:
    """What the preference store keeps with an arena vote."""
    return {
        "source": "arena", "battle_id": battle.id,
        "model_a": battle.model_a, "model_b": battle.model_b,
        "version_a": _version_of(battle.model_a), "version_b": _version_of(battle.model_b),
        "sampling": battle.sampling,
        "timestamp": datetime.fromtimestamp(battle.voted_at or battle.created_at, UTC).isoformat(),
    }


def _claim(conn: Connection, battle_id: str, vote: Vote, now: float) -> bool:
    """Mark the battle voted unless it already is, by this or any other process: a conditional UPDATE whose row
    count says whether this vote is the one (on Postgres a concurrent claim waits for this one's commit, then
    finds the vote set)."""
    battles = db.battles.c
    result = conn.execute(update(db.battles).where((battles.id == battle_id) & battles.vote.is_(None))
                          .values(vote=vote.value, voted_at=now))
    return result.rowcount == 1


def _mark(conn: Connection, requests: Sequence[VoteRequest], now: float) -> list[VoteResult]:
    """Check each vote against its battle (one query) and claim the battle for it; the first vote of a battle wins,
    any later one (in this batch or already stored) gets 409. Claims go in battle id order, so that two batches
    in two processes never wait on each other's rows in a cycle."""
    ids = {request.battle_id for request in requests}
    found = {row.id: Battle(**dict(row._mapping))
             for row in conn.execute(select(db.battles).where(db.battles.c.id.in_(ids)))}
    results: dict[int, VoteResult] = {}
    for index, request in sorted(enumerate(requests), key=lambda item: item[1].battle_id):
        battle = found.get(request.battle_id)
        if battle is None:
            results[index] = VoteResult(None, 404, f"battle {request.battle_id!r}: not found")
        elif battle.vote is not None or not _claim(conn, battle.id, request.vote, now):
            results[index] = VoteResult(battle, 409, f"battle {battle.id!r}: already voted")
        else:
            found[battle.id] = replace(battle, vote=request.vote.value, voted_at=now)
            results[index] = VoteResult(found[battle.id], 200)
    return [results[index] for index in range(len(requests))]


def record_votes(workspace: Workspace, collector: PreferenceCollector,
                 requests: Sequence[VoteRequest]) -> list[VoteResult]:
    """Mark the battles voted and store their votes, all in one transaction; results in request order."""
    now = time.time()
    with db.write_transaction(workspace.engine) as conn:
        results = _mark(conn, requests, now)
        accepted = [r.battle for r in results if r.status == 200 and r.battle is not None]
        votes = [
            {"question": b.prompt, "response_a": b.response_a, "response_b": b.response_b,
             "choice": b.vote, "metadata": vote_metadata(b), "vote_id": b.id, "user": b.user}
            for b in accepted
        ]
        if votes:
            collector.collect_many(votes, conn)
    return results
