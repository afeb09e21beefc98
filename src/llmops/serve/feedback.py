"""Thumbs up/down on a completion: one per (completion, user), the last one wins.

The thumb names the version that served the completion (from the `requests` log). Storing it is an upsert on
the unique (completion_id, user) index, so ten thumbs of one user on one completion leave one row, the last.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from llmops import db
from llmops.errors import LLMOpsError
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


def new_thumb(workspace: Workspace, completion_id: str, score: str | int, comment: str = "",
              user: str = "") -> Thumb:
    """A thumb (`up`/`down` or ±1) on the completion `completion_id`; UnknownCompletion when there is none."""
    if score not in SCORES:
        raise LLMOpsError(f"score {score!r}: expected up, down, 1 or -1")
    with workspace.engine.connect() as conn:
        model = conn.execute(select(db.requests.c.model).where(db.requests.c.id == completion_id)).scalar()
    if model is None:
        raise UnknownCompletion(f"completion {completion_id!r}: not found")
    return Thumb(completion_id, str(model), SCORES[score], comment, user, time.time())


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
