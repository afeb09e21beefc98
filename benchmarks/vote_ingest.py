"""Vote ingestion: votes/s and latency percentiles of `POST /v1/arena/battles/{id}/vote` at 16 clients.

Starts `llmops serve` in a subprocess on 127.0.0.1 (a free port) over a fresh workspace in a temp dir
holding N pre-made battles, sends one vote per battle from C concurrent clients (asyncio + aiohttp), and
checks that every acknowledged vote is in the store. Commits are durable (SQLite WAL, synchronous=FULL);
the gateway groups concurrent votes into shared commits.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/vote_ingest.py --votes 2000 --clients 16
"""

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from sqlalchemy import func, select

from llmops import db
from llmops.models.metrics import percentile
from llmops.serve.arena import insert_battle, new_battle
from llmops.serve.server import GatewayProcess
from llmops.workspace import init_workspace


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


async def load(url: str, battle_ids: list[str], clients: int) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.get(f"{url}/metrics") as warmup:
            await warmup.read()
        start = time.perf_counter()
        await asyncio.gather(*(client(http, url, battle_ids[i::clients], latencies, statuses)
                               for i in range(clients)))
        elapsed = time.perf_counter() - start
    return elapsed, latencies, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vote-bench-") as tmp:
        workspace = init_workspace(Path(tmp) / "ws")
        with workspace.engine.begin() as conn:
            battles = [new_battle(f"q{i}", f"u{i % 100}", ("chat-v1.0", "chat-v1.1"), (f"a{i}", f"b{i}"), {})
                       for i in range(args.votes)]
            for battle in battles:
                insert_battle(conn, battle)
        with GatewayProcess(workspace.root, Path(tmp) / "server.log", ["auth.open_arena=true"]) as server:
            before = cpu_seconds(server.pid)
            elapsed, latencies, statuses = asyncio.run(load(server.url, [b.id for b in battles], args.clients))
            server_cpu = cpu_seconds(server.pid) - before
        with workspace.engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(db.votes)).scalar()
    acked = statuses.count(200)
    print(f"votes={args.votes} clients={args.clients} acknowledged={acked} stored={stored}")
    print(f"throughput {acked / elapsed:,.0f} votes/s   latency p50 {percentile(latencies, 50):.1f} ms   "
          f"p99 {percentile(latencies, 99):.1f} ms   ({elapsed:.2f} s)")
    print(f"server CPU {server_cpu / max(acked, 1) * 1000:.2f} ms per vote (≈ {acked / server_cpu:,.0f} votes/s "
          f"per fully free core); machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if acked != args.votes or stored != acked:
        raise SystemExit("some votes were not acknowledged or not stored")


if __name__ == "__main__":
    main()
