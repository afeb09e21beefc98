"""Vote ingestion: votes/s and latency percentiles of `POST /v1/arena/battles/{id}/vote` at 16 clients, side by side
for SQLite with one gateway process, PostgreSQL with one, and PostgreSQL with two replicas on the same store.

Each row starts `llmops serve` (one or two subprocesses on 127.0.0.1, free ports) over a fresh workspace in a temp dir
holding N pre-made battles, sends one vote per battle from C concurrent clients (asyncio + aiohttp; with two
replicas, client i talks to replica i mod 2, as a load balancer spreads them), and checks that every acknowledged
vote is in the store. Commits are durable (SQLite WAL, synchronous=FULL; Postgres as configured, fsync on by
default); each gateway groups concurrent votes into shared commits. The PostgreSQL rows run on a fresh database
(created, then dropped) on the server named by `--database-url` or LLMOPS_TEST_DATABASE_URL (`scripts/with_postgres`
starts one); without either they are skipped, and the output says so.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vote_ingest.py --votes 2000 --clients 16 [--database-url URL]
"""

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
from sqlalchemy import create_engine, func, make_url, select

from llmops import db
from llmops.models.metrics import percentile
from llmops.serve.arena import insert_battle, new_battle
from llmops.serve.server import GatewayProcess
from llmops.workspace import init_workspace

DATABASE_URL_ENV = "LLMOPS_TEST_DATABASE_URL"


@dataclass(frozen=True)
class Row:
    label: str
    votes: int
    acknowledged: int
    stored: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def client(http: aiohttp.ClientSession, url: str, jobs: list[str], latencies: list[float],
                 statuses: list[int]) -> None:
    for battle_id in jobs:
        start = time.perf_counter()
        async with http.post(f"{url}/v1/arena/battles/{battle_id}/vote", json={"vote": "a"}) as response:
            await response.read()
            statuses.append(response.status)
        latencies.append((time.perf_counter() - start) * 1000)


async def load(urls: list[str], battle_ids: list[str], clients: int) -> tuple[float, list[float], list[int]]:
    """Client i sends its share of the votes to replica i mod len(urls)."""
    latencies: list[float] = []
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        for url in urls:
            async with http.get(f"{url}/metrics") as warmup:
                await warmup.read()
        start = time.perf_counter()
        await asyncio.gather(*(client(http, urls[i % len(urls)], battle_ids[i::clients], latencies, statuses)
                               for i in range(clients)))
        elapsed = time.perf_counter() - start
    return elapsed, latencies, statuses


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """The URL of a new database `bench_<hex>` on the server at `server_url`; dropped on exit."""
    url = make_url(server_url)
    name = f"bench_{uuid.uuid4().hex}"
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


def run_row(label: str, database_url: str, replicas: int, votes: int, clients: int) -> Row:
    """One configuration: `replicas` gateways over a fresh workspace (on `database_url`, or SQLite when empty)."""
    with tempfile.TemporaryDirectory(prefix="vote-bench-") as tmp:
        overrides = [f"database_url={database_url}"] if database_url else []
        workspace = init_workspace(Path(tmp) / "ws", overrides=overrides)
        with workspace.engine.begin() as conn:
            battles = [new_battle(f"q{i}", f"u{i % 100}", ("chat-v1.0", "chat-v1.1"), (f"a{i}", f"b{i}"), {})
                       for i in range(votes)]
            for battle in battles:
                insert_battle(conn, battle)
        with ExitStack() as servers:
            gateways = [servers.enter_context(GatewayProcess(workspace.root, Path(tmp) / f"server{i}.log",
                                                             ["auth.open_arena=true"])) for i in range(replicas)]
            before = sum(cpu_seconds(g.pid) for g in gateways)
            elapsed, latencies, statuses = asyncio.run(load([g.url for g in gateways], [b.id for b in battles],
                                                            clients))
            server_cpu = sum(cpu_seconds(g.pid) for g in gateways) - before
        with workspace.engine.connect() as conn:
            stored = int(conn.execute(select(func.count()).select_from(db.votes)).scalar() or 0)
        workspace.engine.dispose()
    return Row(label, votes, statuses.count(200), stored, elapsed, percentile(latencies, 50),
               percentile(latencies, 99), server_cpu)


def print_table(rows: list[Row], skipped: str) -> None:
    print(f"{'':24}{'votes/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/vote':>13}{'acked':>8}{'stored':>8}")
    for r in rows:
        print(f"{r.label:24}{r.acknowledged / r.seconds:>10,.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}"
              f"{r.server_cpu_s / max(r.acknowledged, 1) * 1000:>13.2f}{r.acknowledged:>8}{r.stored:>8}")
    if skipped:
        print(f"PostgreSQL rows skipped: {skipped}")
    print(f"CPU ms/vote: the gateway processes' CPU time per acknowledged vote (Postgres' own not counted); "
          f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--database-url", default=os.environ.get(DATABASE_URL_ENV, ""),
                        help=f"SQLAlchemy URL of a PostgreSQL server whose user may CREATE DATABASE "
                             f"(default: ${DATABASE_URL_ENV})")
    args = parser.parse_args()
    print(f"votes={args.votes} clients={args.clients}")
    rows = [run_row("SQLite, 1 process", "", 1, args.votes, args.clients)]
    skipped = "" if args.database_url else f"no --database-url given and {DATABASE_URL_ENV} is not set"
    if args.database_url:
        for replicas in (1, 2):
            with fresh_database(args.database_url) as url:
                label = f"Postgres, {replicas} process{'es' if replicas > 1 else ''}"
                rows.append(run_row(label, url, replicas, args.votes, args.clients))
    print_table(rows, skipped)
    if any(r.acknowledged != r.votes or r.stored != r.acknowledged for r in rows):
        raise SystemExit("some votes were not acknowledged or not stored")


if __name__ == "__main__":
    main()
