"""The workspace database: SQLAlchemy Core tables and migrations by schema version.

SQLite (WAL, synchronous=FULL) by default; Postgres (or any SQLAlchemy URL) for several processes on one store.
Each table belongs to one part of the system, named in its comment. A transaction that reads state and writes a
change depending on it is a `write_transaction`: serialised with every other one across processes.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Dialect,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    inspect,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError

from llmops.errors import LLMOpsError
from llmops.votes import Vote

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

# data layer: registered datasets (data/registry.py)
datasets = Table(
    "datasets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(20), nullable=False),  # pt | sft | dpo | kto | eval
    Column("file_name", String(500), nullable=False),
    Column("format", String(20), nullable=False),  # text | messages | sharegpt | alpaca | ranking
    Column("rows", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

# data layer: every arena vote / collected preference, the source of DPO pairs (data/preferences.py)
votes = Table(
    "votes",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("user", String(200), nullable=False, default=""),
    Column("question", Text, nullable=False),
    Column("response_a", Text, nullable=False),
    Column("response_b", Text, nullable=False),
    Column("choice", String(10), nullable=False),  # a | b | tie | both_bad (llmops.votes.Vote; schema v3)
    Column("meta", JSON, nullable=False, default=dict),
)

# training: LLaMA-Factory runs (train/runner.py)
runs = Table(
    "runs",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("stage", String(20), nullable=False),
    Column("config_path", String(500), nullable=False),
    Column("output_dir", String(500), nullable=False),
    Column("run_dir", String(500), nullable=False),
    Column("status", String(20), nullable=False),  # running | stopping | succeeded | failed | stopped
    Column("pid", Integer),
    Column("exit_code", Integer),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("error", Text, nullable=False, default=""),
    Column("metrics", JSON, nullable=False, default=dict),
)

# models: registered versions with lineage (models/registry.py)
model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(100), primary_key=True),  # e.g. chat-v1.1
    Column("kind", String(20), nullable=False),  # completion | chat
    Column("version", String(20), nullable=False),  # v1.0, v1.1 …
    Column("stage", String(20), nullable=False),  # base | pt | sft | dpo
    Column("parent", String(100)),
    Column("base_model", String(500), nullable=False),
    Column("path", String(500), nullable=False),
    Column("merged", Boolean, nullable=False),
    Column("datasets", JSON, nullable=False, default=list),
    Column("config_path", String(500), nullable=False, default=""),
    Column("run_id", String(100)),
    Column("metrics", JSON, nullable=False, default=dict),
    Column("upstream_url", String(500), nullable=False, default=""),
    Column("status", String(20), nullable=False, default="registered"),
    Column("created_at", Float, nullable=False),
)

# models: aliases production / candidate / previous → version name (models/registry.py)
aliases = Table(
    "aliases",
    metadata,
    Column("alias", String(50), primary_key=True),
    Column("model", String(100), nullable=False),
    Column("updated_at", Float, nullable=False),
)

# serving: thumbs up/down on a completion (serve/gateway.py)
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("completion_id", String(100), nullable=False, index=True),
    Column("model", String(100), nullable=False, index=True),
    Column("score", Integer, nullable=False),  # +1 | -1
    Column("comment", Text, nullable=False, default=""),
    Column("user", String(200), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
)
# one thumb per (completion, user): a new one replaces the old (schema v2)
feedback_per_user = Index("uq_feedback_completion_user", feedback.c.completion_id, feedback.c.user, unique=True)

# serving: one row per completion, the source of per-version metrics (serve/gateway.py)
requests = Table(
    "requests",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("model", String(100), nullable=False, index=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("latency_ms", Float, nullable=False),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("ok", Boolean, nullable=False),
    Column("error", Text, nullable=False, default=""),
    Column("user", String(200), nullable=False, default=""),  # served to; its thumbs come from them (schema v4)
    # what was asked and answered, so a thumb on it becomes a KTO example (data/kto.py; schema v5)
    Column("messages", JSON, nullable=False, default=list),
    Column("answer", Text, nullable=False, default=""),
)

# serving: arena battles, identities hidden until voted (serve/gateway.py)
battles = Table(
    "battles",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("user", String(200), nullable=False, default=""),
    Column("prompt", Text, nullable=False),
    Column("model_a", String(100), nullable=False),
    Column("model_b", String(100), nullable=False),
    Column("response_a", Text, nullable=False),
    Column("response_b", Text, nullable=False),
    Column("sampling", JSON, nullable=False, default=dict),
    Column("vote", String(10)),  # a | b | tie | both_bad (llmops.votes.Vote), None until voted
    Column("voted_at", Float),
)

# the current rollout (one row per candidate) and every decision with its evidence (models/rollouts.py)
rollouts = Table(
    "rollouts",
    metadata,
    Column("candidate", String(100), primary_key=True),
    Column("production", String(100), nullable=False),
    Column("stage_index", Integer, nullable=False),
    Column("traffic", Float, nullable=False),
    Column("status", String(20), nullable=False),  # running | promoted | rolled_back
    Column("started_at", Float, nullable=False),
    Column("stage_started_at", Float, nullable=False),
)

rollout_events = Table(
    "rollout_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("candidate", String(100), nullable=False),
    Column("event", String(30), nullable=False),
    Column("traffic", Float, nullable=False),
    Column("evidence", JSON, nullable=False, default=dict),
)

SCHEMA_VERSION = 5


def _one_feedback_per_user(conn: Connection) -> None:
    """v1 → v2: keep the latest thumb (highest id) of each (completion, user), then make the pair unique."""
    latest = select(func.max(feedback.c.id)).group_by(feedback.c.completion_id, feedback.c.user)
    conn.execute(delete(feedback).where(feedback.c.id.not_in(latest)))
    feedback_per_user.create(conn)


def _one_vote_vocabulary(conn: Connection) -> None:
    """v2 → v3: votes stored as the spec's A/B become a/b, the values of `Vote` that battles already use."""
    for old, vote in (("A", Vote.A), ("B", Vote.B)):
        conn.execute(update(votes).where(votes.c.choice == old).values(choice=vote.value))
        conn.execute(update(battles).where(battles.c.vote == old).values(vote=vote.value))


def add_column_sql(dialect: Dialect, column: Column[Any], default: str) -> str:
    """`ALTER TABLE … ADD COLUMN` of `column`, NOT NULL with the SQL literal `default`, names quoted for `dialect`
    (`user` is a reserved word in Postgres)."""
    preparer = dialect.identifier_preparer
    return (f"ALTER TABLE {preparer.format_table(column.table)} ADD COLUMN {preparer.format_column(column)} "
            f"{column.type.compile(dialect=dialect)} NOT NULL DEFAULT {default}")


def _requests_user(conn: Connection) -> None:
    """v3 → v4: each request records the user it was served to; earlier ones were served to no one ('')."""
    if "user" not in {column["name"] for column in inspect(conn).get_columns(requests.name)}:
        conn.execute(text(add_column_sql(conn.dialect, requests.c.user, "''")))


def _requests_text(conn: Connection) -> None:
    """v4 → v5: each request records its messages and answer; earlier ones recorded neither (`[]`, '')."""
    present = {column["name"] for column in inspect(conn).get_columns(requests.name)}
    for column, default in ((requests.c.messages, "'[]'"), (requests.c.answer, "''")):
        if column.name not in present:
            conn.execute(text(add_column_sql(conn.dialect, column, default)))


# Migrations: version N → N+1, each a function of a connection. Version 1 is create_all.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _one_feedback_per_user, 2: _one_vote_vocabulary, 3: _requests_user, 4: _requests_text,
}

BUSY_RETRY_S = 0.05  # between tries to open a busy store
_BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")
_BUSY_SQLSTATES = ("55P03", "40P01", "40001")  # lock_not_available, deadlock_detected, serialization_failure


def _sqlite_pragmas(busy_timeout_s: float) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def is_busy(error: DBAPIError) -> bool:
    """Whether `error` says another connection holds a lock (retrying later helps): SQLite's "database is locked",
    Postgres' lock timeout, deadlock or serialization failure."""
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return sqlstate in _BUSY_SQLSTATES or any(text in str(error.orig).lower() for text in _BUSY_MESSAGES)


def connect(url: str, busy_timeout_s: float = 30.0) -> Engine:
    """An engine for `url` with the schema created or migrated to SCHEMA_VERSION. On SQLite a statement waits
    up to `busy_timeout_s` for another connection's lock before failing with "database is locked". Opening the
    store is retried for as long while it is busy: SQLite can refuse a new database's switch to WAL at once,
    without waiting, while other processes open it too."""
    is_sqlite = url.startswith("sqlite")
    sqlite_args = {"timeout": busy_timeout_s, "check_same_thread": False}
    engine = create_engine(url, connect_args=sqlite_args if is_sqlite else {})
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_s))
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            migrate(engine)
            return engine
        except DBAPIError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(BUSY_RETRY_S)


# Postgres advisory lock keys (pg_advisory_xact_lock): one per kind of serialised change.
SCHEMA_LOCK = 0x6C6C6D01  # creating or migrating the schema
ROLLOUT_LOCK = 0x6C6C6D02  # aliases, version statuses and rollouts (models/rollouts.py)
LOOP_LOCK = 0x6C6C6D03  # the online loop, one per store (loop/flywheel.py; a session lock, see `session_lock`)


def redacted(url: str) -> str:
    """A store's URL as it may be shown to a user: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class SessionLock:
    """What `session_lock` yields: true when held. `check()` raises LLMOpsError once the connection holding it is
    gone (the server dropped the lock with it, so another process may hold it now)."""

    held: bool
    conn: Connection | None = None  # Postgres: the connection whose session holds the lock

    def __bool__(self) -> bool:
        return self.held

    def check(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise LLMOpsError(f"the lock's connection to the store is gone ({type(exc).__name__}), and the lock "
                              "with it") from exc


@contextmanager
def session_lock(engine: Engine, key: int) -> Iterator[SessionLock]:
    """Postgres: hold the session-level advisory lock `key` (pg_try_advisory_lock) on a connection of its own for
    the block; yields a false lock at once when another session holds it. The server drops the lock with the
    connection, so a holder that dies (even `kill -9`) frees it; a holder whose connection dropped learns it from
    `check()`. Other databases (SQLite: one machine) have none: yields a held lock."""
    if engine.dialect.name != "postgresql":
        yield SessionLock(True)
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")  # no transaction left open for the life of the lock
        if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
            yield SessionLock(False)
            return
        try:
            yield SessionLock(True, conn)
        finally:
            conn.invalidate()  # closes the session, and the lock with it: never back into the pool holding it


@contextmanager
def write_transaction(engine: Engine, lock: int | None = None) -> Iterator[Connection]:
    """A transaction whose reads decide its writes, serialised across processes. SQLite: BEGIN IMMEDIATE takes the
    write lock first (waiting up to the busy timeout), so what it reads is the latest commit and no other writer
    can slip in before its writes. Postgres: with `lock`, pg_advisory_xact_lock(lock) first, held until the end
    of the transaction, so transactions taking the same lock run one after the other."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif lock is not None and conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
        yield conn


def migrate(engine: Engine) -> None:
    """Create the schema or migrate it to SCHEMA_VERSION, in one transaction; processes starting at once take
    turns (the second sees the first's schema)."""
    with write_transaction(engine, SCHEMA_LOCK) as conn:
        metadata.create_all(conn, tables=[schema_version])
        current = conn.execute(select(schema_version.c.version)).scalar()
        if current is None:
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
            return
        for version in range(current, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
        if current != SCHEMA_VERSION:
            conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
