"""Thumbs up/down on a completion: one per (completion, user), the last one wins.

A completion is served to one requester, so its thumb comes from them: the `requests` log names the version that
served it and the user it was served to. A thumb naming another user is refused; on a completion served to no user
every thumb is stored under the empty user, so varying `user` never adds rows. Storing it is an upsert on the unique
(completion_id, user) index, so ten thumbs on one completion leave one row, the last.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from llmops import db
from llmops.errors import LLMOpsError
from llmops.serve.state import ServeState
from llmops.workspace import Workspace

SCORES: dict[str | int, int] = {"up": 1, 1: 1, "down": -1, -1: -1}
# dialects with INSERT … ON CONFLICT DO UPDATE; any other database replaces by delete + insert
_UPSERT_INSERTS: dict[str, Callable[..., Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_REPLACED = ("model", "score", "comment", "created_at")


@dataclass(frozen=True)
class Thumb:
    completion_id: str
    model: str
    score: int  # +1 | -1
    comment: str
    user: str
    created_at: float


class UnknownCompletion(LLMOpsError):
    """The thumb names a completion this gateway never served (HTTP 404)."""


class ForeignCompletion(LLMOpsError):
    """The thumb names a completion served to another user (HTTP 403); the message does not say to whom."""


def new_thumb(workspace: Workspace, completion_id: str, score: str | int, comment: str = "",
              user: str = "") -> Thumb:
    """`user`'s thumb (`up`/`down` or ±1) on the completion `completion_id`, under the user it was served to;
    UnknownCompletion when there is none, ForeignCompletion when it was served to a user other than `user`."""
    if score not in SCORES:
        raise LLMOpsError(f"score {score!r}: expected up, down, 1 or -1")
    table = db.requests
    with workspace.engine.connect() as conn:
        served = conn.execute(select(table.c.model, table.c.user).where(table.c.id == completion_id)).first()
    if served is None:
        raise UnknownCompletion(f"completion {completion_id!r}: not found")
    if served.user and served.user != user:
        raise ForeignCompletion(f"feedback: completion {completion_id!r} was served to another user")
    return Thumb(completion_id, str(served.model), SCORES[score], comment, str(served.user), time.time())


def store_thumb(conn: Connection, thumb: Thumb) -> None:
    """Write `thumb` in the caller's transaction, replacing the same user's earlier thumb on the completion."""
    table = db.feedback
    make_insert = _UPSERT_INSERTS.get(conn.dialect.name)
    if make_insert is None:
        conn.execute(delete(table).where(table.c.completion_id == thumb.completion_id, table.c.user == thumb.user))
        conn.execute(table.insert().values(**asdict(thumb)))
        return
    statement = make_insert(table).values(**asdict(thumb))
    conn.execute(statement.on_conflict_do_update(index_elements=[table.c.completion_id, table.c.user],
                                                 set_={name: statement.excluded[name] for name in _REPLACED}))


async def give_thumb(state: ServeState, completion_id: str, score: str | int, comment: str = "",
                     user: str = "") -> Thumb:
    """Store a thumb through the gateway's writer (committed before this returns) and count it in `llmops_feedback`;
    UnknownCompletion when the gateway never served `completion_id`, ForeignCompletion when it served another user."""
    thumb = new_thumb(state.workspace, completion_id, score, comment, user)
    await asyncio.wrap_future(state.writer.submit(lambda conn: store_thumb(conn, thumb)))
    state.metrics.feedback.labels(model=thumb.model, score="up" if thumb.score > 0 else "down").inc()
    return thumb
