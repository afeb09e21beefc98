"""Throwaway Postgres databases for the store tests: a fresh database per test on the server whose SQLAlchemy URL is
in LLMOPS_TEST_DATABASE_URL (`scripts/with_postgres`, which `make test` runs, starts one), dropped afterwards."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url

ENV = "LLMOPS_TEST_DATABASE_URL"
SKIP_REASON = f"{ENV} is not set: run the tests with scripts/with_postgres (make test does)"


def server_url() -> str:
    """The test server's URL, or '' when none is configured."""
    return os.environ.get(ENV, "").strip()


def overrides(store_url: str) -> list[str]:
    """Settings overrides that point a workspace at `store_url` (none for '', the workspace's SQLite)."""
    return [f"database_url={store_url}"] if store_url else []


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database `t_<hex>` on the test server; dropped (connections and all) on exit."""
    url = make_url(server_url())
    name = f"t_{uuid.uuid4().hex}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
