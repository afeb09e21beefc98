"""Admin routes (bearer token from `llmops init`) and the metrics routes.

Admin: load / unload a version in the embedded engine, start a rollout, set the running rollout's traffic,
promote, roll back. The handlers map bodies and errors only: every state change is models/rollouts.py's (the one
`promote` and `rollback` the CLI and the loop call too), recorded as a rollout event by `admin` (or `ui`, when the
UI's models tab sends it with the admin token).
"""

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from llmops.auth import is_admin_token
from llmops.errors import LLMOpsError
from llmops.models import registry, rollouts
from llmops.models.metrics import served_models, version_metrics
from llmops.serve.state import ServeState


class ChangeBody(BaseModel):
    """Who (the admin API, or the UI through it) and why, recorded with the rollout event."""

    model_config = ConfigDict(extra="forbid")
    by: Literal["admin", "ui"] = "admin"
    reason: str = Field("manual", max_length=200)


class RolloutBody(ChangeBody):
    candidate: str = Field(min_length=1, max_length=100)


class TrafficBody(ChangeBody):
    traffic: float = Field(ge=0, le=1)


class PromoteBody(ChangeBody):
    model: str = Field("", max_length=100)


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
        started = rollouts.start_rollout(state.workspace, body.candidate, {"reason": body.reason}, by=body.by)
        return {"candidate": started.candidate, "production": started.production, "traffic": started.traffic}

    @admin.post("/traffic")
    def traffic(body: TrafficBody) -> dict[str, Any]:
        changed = rollouts.set_traffic(state.workspace, body.traffic, by=body.by, reason=body.reason)
        return {"candidate": changed.candidate, "traffic": changed.traffic}

    @admin.post("/promote")
    def promote(body: PromoteBody) -> dict[str, Any]:
        done = rollouts.promote(state.workspace, body.model, by=body.by, reason=body.reason)
        return {"production": done.production, "previous": done.displaced}

    @admin.post("/rollback")
    def rollback(body: ChangeBody | None = None) -> dict[str, Any]:
        change = body or ChangeBody()
        done = rollouts.rollback(state.workspace, by=change.by, reason=change.reason)
        if done.rollout is not None:
            return {"rolled_back": done.rollout.candidate, "production": done.production}
        return {"production": done.production}

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
