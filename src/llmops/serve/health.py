"""`GET /health` and the watchdog: a dead background worker is never silent.

`/health` (no sign-in) lists the gateway's workers (database writer, vote batcher, decoder), each alive or not
with the requests it has queued; 200 when all are alive, 503 otherwise. The watchdog, a task of the app's
lifespan, looks once a second: the first dead worker is logged and recorded as `ServeState.failure`, and the
server (`serve/server.py` `GatewayServer`) then shuts down and the command exits non-zero naming it, so that
a supervisor restarts the gateway instead of it hanging.
"""

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from llmops.inference.workers import log
from llmops.serve.state import ServeState

WATCH_INTERVAL_S = 1.0


def health_routes(state: ServeState) -> APIRouter:
    api = APIRouter()

    @api.get("/health", response_model=None)
    def health() -> JSONResponse:
        workers = state.workers()
        alive = all(worker.alive for worker in workers)
        body: dict[str, Any] = {
            "status": "ok" if alive else "failing",
            "workers": {w.name: {"alive": w.alive, "queued": w.queued} for w in workers},
        }
        return JSONResponse(body, status_code=200 if alive else 503)

    return api


async def watch_workers(state: ServeState, interval_s: float = WATCH_INTERVAL_S) -> None:
    """Until a worker is found dead: then its failure is logged and kept in `state.failure`."""
    while not state.failure:
        await asyncio.sleep(interval_s)
        dead = [worker for worker in state.workers() if not worker.alive]
        if dead:
            state.failure = "; ".join(f"worker {worker.name} died ({worker.failure})" for worker in dead)
            log.critical("gateway: %s; shutting down", state.failure)
