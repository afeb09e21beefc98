"""Model registry: versions with lineage (base → cpt → sft → dpo, datasets by hash) and aliases.

Names follow the spec (section 1.2): offline runs give big versions (`completion-v1.0`, `chat-v1.0`,
`chat-v2.0`), DPO on feedback gives small ones (`chat-v1.1`, `chat-v1.2` …). A merged version's `path`
is a full Hugging Face folder; an adapter version's `path` is a LoRA adapter folder that applies to
`base_model`. A non-empty `upstream_url` means an external OpenAI-compatible server serves the version.
Aliases (`production`, `candidate`, `previous`) point at version names; the gateway resolves them.
Aliases move only through models/rollouts.py (`promote`, `rollback`, `start_rollout`), in the same transaction as
the rollout row and its event; the `…_in(conn, …)` functions here are the steps those transactions are made of.
"""

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from llmops import db
from llmops.errors import LLMOpsError
from llmops.fileio import check_folder
from llmops.workspace import Workspace

KINDS = ("completion", "chat")
STAGES = ("base", "pt", "sft", "dpo", "kto")
PREFERENCE_STAGES = ("dpo", "kto")  # a new LoRA on the merged parent chat model: a minor version
ALIASES = ("production", "candidate", "previous")
STATUSES = ("registered", "candidate", "production", "archived", "rejected")
SERVABLE_STATUSES = ("registered",)  # besides the targets of ALIASES (see `servable`)
_NAME = re.compile(r"^(?P<kind>[a-z][a-z0-9_]*)-v(?P<major>\d+)\.(?P<minor>\d+)$")
_VERSION = re.compile(r"^v(?P<major>\d+)\.(?P<minor>\d+)$")


@dataclass(frozen=True)
class ModelVersion:
    """One row of the `model_versions` table."""

    name: str
    kind: str
    version: str
    stage: str
    parent: str | None
    base_model: str
    path: str
    merged: bool
    datasets: list[dict[str, Any]] = field(default_factory=list)
    config_path: str = ""
    run_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    upstream_url: str = ""
    status: str = "registered"
    created_at: float = 0.0

    @property
    def is_adapter(self) -> bool:
        return not self.merged and not self.upstream_url

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def validate_name(name: str) -> str:
    """A version name like `chat-v1.1`; anything else (paths, `..`, spaces) is rejected."""
    if not _NAME.match(name):
        raise LLMOpsError(f"model {name!r}: not a version name (expected e.g. chat-v1.0 or completion-v1.0)")
    return name


def _parse_version(version: str) -> tuple[int, int]:
    match = _VERSION.match(version)
    if not match:
        raise LLMOpsError(f"version {version!r}: expected vMAJOR.MINOR, e.g. v1.0")
    return int(match["major"]), int(match["minor"])


def _row_to_version(row: Any) -> ModelVersion:
    data = dict(row._mapping)
    return ModelVersion(**data)


def _versions_of(conn: Connection, kind: str) -> list[tuple[int, int]]:
    rows = conn.execute(select(db.model_versions.c.version).where(db.model_versions.c.kind == kind))
    return sorted(_parse_version(version) for (version,) in rows)


def _next_version(conn: Connection, kind: str, major: bool, parent: str | None = None) -> str:
    """v1.0 first; then vN+1.0 (offline, major) or vN.M+1 (online): N is the parent's major when the parent is a
    version of `kind` (a DPO of chat-v1.0 is chat-v1.x even after chat-v2.0), else the newest major."""
    existing = _versions_of(conn, kind)
    if not existing:
        return "v1.0"
    top_major = existing[-1][0]
    if major:
        return f"v{top_major + 1}.0"
    parent_row = get_in(conn, parent) if parent is not None else None
    within = _parse_version(parent_row.version)[0] if parent_row is not None and parent_row.kind == kind else top_major
    top_minor = max((minor for maj, minor in existing if maj == within), default=0)
    return f"v{within}.{top_minor + 1}"


def next_version(workspace: Workspace, kind: str, *, major: bool, parent: str | None = None) -> str:
    """The next free version of `kind`: v1.0 first; then vN+1.0 (offline, major) or vN.M+1 (DPO, KTO), N the
    parent's major."""
    _check_kind(kind)
    with workspace.engine.connect() as conn:
        return _next_version(conn, kind, major, parent)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise LLMOpsError(f"model kind {kind!r}: expected one of {', '.join(KINDS)}")


def register_version(
    workspace: Workspace,
    *,
    kind: str,
    stage: str,
    parent: str | None,
    base_model: str,
    path: str,
    merged: bool,
    datasets: list[dict[str, Any]] | None = None,
    config_path: str = "",
    run_id: str | None = None,
    metrics: dict[str, Any] | None = None,
    upstream_url: str = "",
    version: str | None = None,
    status: str = "registered",
) -> ModelVersion:
    """Add a version in one transaction. Without `version`, the next one is taken (major unless stage is dpo)."""
    _check_kind(kind)
    if stage not in STAGES:
        raise LLMOpsError(f"model stage {stage!r}: expected one of {', '.join(STAGES)}")
    if status not in STATUSES:
        raise LLMOpsError(f"model status {status!r}: expected one of {', '.join(STATUSES)}")
    if path:  # a path with nothing here may be a hub id or a folder of the serving host
        check_folder(Path(path), "model folder", missing_ok=True)
    chosen = version or ""
    try:
        with workspace.engine.begin() as conn:
            if parent is not None:
                get_in(conn, parent)
            chosen = chosen or _next_version(conn, kind, stage not in PREFERENCE_STAGES, parent)
            _parse_version(chosen)
            model = ModelVersion(
                name=validate_name(f"{kind}-{chosen}"), kind=kind, version=chosen, stage=stage, parent=parent,
                base_model=base_model, path=path, merged=merged, datasets=list(datasets or []),
                config_path=config_path, run_id=run_id, metrics=dict(metrics or {}),
                upstream_url=upstream_url, status=status, created_at=time.time(),
            )
            conn.execute(insert(db.model_versions).values(**model.to_dict()))
    except IntegrityError as exc:
        raise LLMOpsError(f"model {kind}-{chosen}: already registered") from exc
    return model


def get_in(conn: Connection, name: str) -> ModelVersion:
    """The registered version `name`, read in the caller's transaction."""
    validate_name(name)
    row = conn.execute(select(db.model_versions).where(db.model_versions.c.name == name)).first()
    if row is None:
        raise LLMOpsError(f"model {name!r}: not registered (see `llmops models list`)")
    return _row_to_version(row)


def get_version(workspace: Workspace, name: str) -> ModelVersion:
    """The registered version `name`; LLMOpsError when it is unknown or not a valid name."""
    with workspace.engine.connect() as conn:
        return get_in(conn, name)


def list_versions(workspace: Workspace) -> list[ModelVersion]:
    """All versions, oldest first."""
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(db.model_versions).order_by(db.model_versions.c.created_at))
        return [_row_to_version(row) for row in rows]


def latest_version(workspace: Workspace, kind: str) -> ModelVersion | None:
    """The highest version of `kind` (e.g. the newest completion model), or None."""
    _check_kind(kind)
    versions = [v for v in list_versions(workspace) if v.kind == kind]
    return max(versions, key=lambda v: _parse_version(v.version), default=None)


def newest_created_at(workspace: Workspace, stage: str) -> float | None:
    """When the newest version of `stage` (e.g. dpo) was registered; None before the first one."""
    with workspace.engine.connect() as conn:
        query = select(func.max(db.model_versions.c.created_at)).where(db.model_versions.c.stage == stage)
        value = conn.execute(query).scalar()
    return None if value is None else float(value)


def set_status_in(conn: Connection, name: str, status: str) -> None:
    """Set the status of version `name` in the caller's transaction."""
    if status not in STATUSES:
        raise LLMOpsError(f"model status {status!r}: expected one of {', '.join(STATUSES)}")
    get_in(conn, name)
    conn.execute(update(db.model_versions).where(db.model_versions.c.name == name).values(status=status))


def set_status(workspace: Workspace, name: str, status: str) -> None:
    with workspace.engine.begin() as conn:
        set_status_in(conn, name, status)


def _check_alias(alias: str) -> None:
    if alias not in ALIASES:
        raise LLMOpsError(f"alias {alias!r}: expected one of {', '.join(ALIASES)}")


def aliases(workspace: Workspace) -> dict[str, str]:
    """alias → version name, for the aliases that are set."""
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(db.aliases.c.alias, db.aliases.c.model))
        return {alias: model for alias, model in rows}


def alias_target(conn: Connection, alias: str) -> str | None:
    """The version `alias` points at (None when unset), read in the caller's transaction."""
    target = conn.execute(select(db.aliases.c.model).where(db.aliases.c.alias == alias)).scalar()
    return None if target is None else str(target)


def set_alias_in(conn: Connection, alias: str, name: str) -> None:
    """Point `alias` at the registered version `name` in the caller's transaction."""
    _check_alias(alias)
    get_in(conn, name)
    conn.execute(delete(db.aliases).where(db.aliases.c.alias == alias))
    conn.execute(insert(db.aliases).values(alias=alias, model=name, updated_at=time.time()))


def set_alias(workspace: Workspace, alias: str, name: str) -> None:
    """Point `alias` at the registered version `name`."""
    with workspace.engine.begin() as conn:
        set_alias_in(conn, alias, name)


def remove_alias(workspace: Workspace, alias: str) -> None:
    _check_alias(alias)
    with workspace.engine.begin() as conn:
        conn.execute(delete(db.aliases).where(db.aliases.c.alias == alias))


def drop_alias_in(conn: Connection, alias: str, name: str) -> None:
    """Remove `alias` when it points at `name` (in the caller's transaction); otherwise leave it."""
    _check_alias(alias)
    conn.execute(delete(db.aliases).where((db.aliases.c.alias == alias) & (db.aliases.c.model == name)))


def resolve(workspace: Workspace, name_or_alias: str) -> ModelVersion:
    """The version an alias points at, or the version of that name."""
    with workspace.engine.connect() as conn:
        return resolve_in(conn, name_or_alias)


def resolve_in(conn: Connection, name_or_alias: str) -> ModelVersion:
    """`resolve` in the caller's transaction."""
    if name_or_alias in ALIASES:
        target = alias_target(conn, name_or_alias)
        if target is None:
            raise LLMOpsError(f"alias {name_or_alias!r}: not set (see `llmops models promote`)")
        return get_in(conn, target)
    return get_in(conn, name_or_alias)


def servable(workspace: Workspace, version: ModelVersion) -> bool:
    """Whether anyone may ask for `version` by name: an alias points at it, or its status is `registered`.
    An archived or rejected version no alias names is served to operators only."""
    return version.status in SERVABLE_STATUSES or version.name in aliases(workspace).values()


def arena_ready(workspace: Workspace, version: ModelVersion) -> bool:
    """Whether `version` may fight arena battles: a servable chat version."""
    return version.kind == "chat" and servable(workspace, version)


def move_production_in(conn: Connection, name: str) -> str | None:
    """Make `name` production (the old production becomes `previous`, a `candidate` alias on `name` goes), in the
    caller's transaction. Returns the old production."""
    get_in(conn, name)
    current = alias_target(conn, "production")
    if current == name:
        return current
    if current is not None:
        set_alias_in(conn, "previous", current)
    set_alias_in(conn, "production", name)
    drop_alias_in(conn, "candidate", name)
    return current


def restore_previous_in(conn: Connection) -> str:
    """Point `production` back at `previous` (and `previous` at the demoted one), in the caller's transaction.
    Returns the new production."""
    previous = alias_target(conn, "previous")
    if previous is None:
        raise LLMOpsError("rollback: no `previous` alias is set")
    current = alias_target(conn, "production")
    set_alias_in(conn, "production", previous)
    if current is not None and current != previous:
        set_alias_in(conn, "previous", current)
    return previous
