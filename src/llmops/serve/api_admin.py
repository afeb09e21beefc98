"""Admin routes (bearer token from `llmops init`) and the metrics routes.

Admin: load / unload a version in the embedded engine, start a rollout, set the running rollout's traffic,
promote, roll back. Promotion and rollback act on the running rollout when there is one (loop/rollout.py),
else on the aliases directly (models/registry.py).
"""

import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import update

from llmops import db
from llmops.auth import is_admin_token
from llmops.errors import LLMOpsError
from llmops.loop import rollout
from llmops.models import registry
from llmops.serve.metrics import served_models, version_metrics
from llmops.serve.state import ServeState


class RolloutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidate: str = Field(min_length=1, max_length=100)


class TrafficBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traffic: float = Field(ge=0, le=1)


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field("", max_length=100)


def set_traffic(state: ServeState, traffic: float) -> dict[str, Any]:
    """Override the running rollout's traffic share (the router reads it on the next request)."""
    running = rollout.current_rollout(state.workspace)
    if running is None:
        raise LLMOpsError("rollout: none is running")
    with state.workspace.engine.begin() as conn:
        conn.execute(update(db.rollouts).where(db.rollouts.c.candidate == running.candidate).values(traffic=traffic))
    rollout.record_event(state.workspace, running.candidate, "traffic_set", {"by": "admin"}, traffic, time.time())
    return {"candidate": running.candidate, "traffic": traffic}


def _promote(state: ServeState, model: str) -> dict[str, Any]:
    if rollout.current_rollout(state.workspace) is not None and not model:
        done = rollout.promote_rollout(state.workspace, reason="admin")
        return {"production": done.candidate, "previous": done.production}
    if not model:
        raise LLMOpsError("promote: no rollout is running; name the model to promote")
    previous = registry.promote(state.workspace, model)
    return {"production": model, "previous": previous}


def _rollback(state: ServeState) -> dict[str, Any]:
    if rollout.current_rollout(state.workspace) is not None:
        done = rollout.rollback_rollout(state.workspace, reason="admin")
        return {"rolled_back": done.candidate, "production": done.production}
    return {"production": registry.rollback(state.workspace)}


def admin_routes(state: ServeState) -> APIRouter:
    def require_token(authorization: str = Header("")) -> None:
        if not is_admin_token(state.workspace, authorization):
            raise HTTPException(401, "admin: a valid bearer token is required", {"WWW-Authenticate": "Bearer"})

    admin = APIRouter(prefix="/v1/admin", dependencies=[Depends(require_token)])

    @admin.post("/models/{name}/load")
    async def load(name: str) -> dict[str, Any]:
        try:
            version = registry.resolve(state.workspace, name)
        except LLMOpsError as exc:
            raise HTTPException(404, str(exc)) from exc
        await state.backend_for(version)
        return {"loaded": version.name, "engine": sorted(state.engine.models)}

    @admin.post("/models/{name}/unload")
    def unload(name: str) -> dict[str, Any]:
        if name not in state.engine.models:
            raise HTTPException(404, f"model {name!r}: not loaded")
        state.engine.unload_model(name)
        return {"unloaded": name, "engine": sorted(state.engine.models)}

    @admin.post("/rollout")
    def start(body: RolloutBody) -> dict[str, Any]:
        started = rollout.start_rollout(state.workspace, body.candidate, {"by": "admin"})
        return {"candidate": started.candidate, "production": started.production, "traffic": started.traffic}

    @admin.post("/traffic")
    def traffic(body: TrafficBody) -> dict[str, Any]:
        return set_traffic(state, body.traffic)

    @admin.post("/promote")
    def promote(body: PromoteBody) -> dict[str, Any]:
        return _promote(state, body.model)

    @admin.post("/rollback")
    def rollback() -> dict[str, Any]:
        return _rollback(state)

    return admin


def metrics_routes(state: ServeState) -> APIRouter:
    api = APIRouter()

    @api.get("/metrics")
    def prometheus() -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @api.get("/v1/metrics")
    def metrics_json(since: float | None = None) -> dict[str, Any]:
        models = [version_metrics(state.workspace, name, since).to_dict() for name in served_models(state.workspace)]
        batcher = state.engine.batcher
        return {"models": models, "batching": {**asdict(batcher.stats), "in_flight": batcher.in_flight(),
                                               "max_batch_size": batcher.max_batch_size}}

    return api
