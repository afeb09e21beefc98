"""Arena and feedback routes: blind battles, one vote each, the leaderboard, thumbs up/down."""

import asyncio
import random
import time
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from llmops import db
from llmops.errors import LLMOpsError
from llmops.serve.api_chat import check_prompt, sampling_of
from llmops.serve.arena import VoteRequest, insert_battle, new_battle, pick_pair
from llmops.serve.leaderboard import leaderboard
from llmops.serve.state import ServeState


class BattleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    user: str = Field("", max_length=200)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0, le=10)


class VoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vote: Literal["a", "b", "tie", "both_bad"]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    completion_id: str = Field(min_length=1, max_length=100)
    score: Literal["up", "down", 1, -1]
    comment: str = Field("", max_length=2000)
    user: str = Field("", max_length=200)


def arena_routes(state: ServeState) -> APIRouter:
    api = APIRouter()
    rng = random.Random()

    @api.post("/v1/arena/battles")
    async def create_battle(request: BattleRequest) -> dict[str, Any]:
        messages = [{"role": "user", "content": request.prompt}]
        check_prompt(state, messages)
        sampling = sampling_of(state, request)
        try:
            left, right = pick_pair(state.workspace, rng)
        except LLMOpsError as exc:
            raise HTTPException(404, str(exc)) from exc
        served = await asyncio.gather(state.complete(left, messages, sampling),
                                      state.complete(right, messages, sampling))
        battle = new_battle(request.prompt, request.user, (left.name, right.name),
                            (served[0].completion.text, served[1].completion.text), sampling.to_dict())
        await asyncio.wrap_future(state.writer.submit(lambda conn: insert_battle(conn, battle)))
        return {"id": battle.id, "prompt": battle.prompt, "response_a": battle.response_a,
                "response_b": battle.response_b}

    @api.post("/v1/arena/battles/{battle_id}/vote")
    async def vote(battle_id: str, body: VoteBody) -> dict[str, Any]:
        result = await asyncio.wrap_future(state.votes.submit(VoteRequest(battle_id, body.vote)))
        if result.status != 200 or result.battle is None:
            raise HTTPException(result.status, result.error)
        state.metrics.votes.labels(choice=body.vote).inc()
        battle = result.battle
        return {"id": battle.id, "vote": battle.vote, "vote_id": battle.id, "model_a": battle.model_a,
                "model_b": battle.model_b}

    @api.get("/v1/arena/leaderboard")
    def get_leaderboard(rounds: int = 200) -> dict[str, Any]:
        if not 1 <= rounds <= 5000:
            raise HTTPException(400, "rounds: expected 1–5000")
        return {"ratings": [r.to_dict() for r in leaderboard(state.workspace, rounds)]}

    @api.post("/v1/feedback")
    async def feedback(request: FeedbackRequest) -> dict[str, Any]:
        with state.workspace.engine.connect() as conn:
            model = conn.execute(select(db.requests.c.model).where(db.requests.c.id == request.completion_id)).scalar()
        if model is None:
            raise HTTPException(404, f"completion {request.completion_id!r}: not found")
        score = 1 if request.score in ("up", 1) else -1
        row = {"completion_id": request.completion_id, "model": model, "score": score, "comment": request.comment,
               "user": request.user, "created_at": time.time()}
        await asyncio.wrap_future(state.writer.submit(lambda conn: conn.execute(db.feedback.insert().values(**row))))
        state.metrics.feedback.labels(model=model, score="up" if score > 0 else "down").inc()
        return {"completion_id": request.completion_id, "model": model, "score": score}

    return api
