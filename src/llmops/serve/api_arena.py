"""Arena and feedback routes: blind battles, one vote each, the leaderboard, thumbs up/down."""

import random
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from llmops.auth import TooManyFailures, signed_in_user
from llmops.serve.api_chat import SamplingFields, check_prompt, sampling_of
from llmops.serve.arena import NoPair, cast_vote, run_battle
from llmops.serve.feedback import ForeignCompletion, UnknownCompletion, give_thumb
from llmops.serve.leaderboard import LeaderboardCache
from llmops.serve.state import ServeState
from llmops.votes import Vote


class BattleRequest(SamplingFields):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    user: str = Field("", max_length=200)
    model_a: str = Field("", max_length=100, description="With model_b: the two servable chat versions (or "
                         "aliases) to battle; both empty: production vs the candidate.")
    model_b: str = Field("", max_length=100)
    shuffle: bool = Field(True, description="Shuffle the chosen pair's sides (blind); false keeps model_a as A.")

    def chosen(self) -> tuple[str, str] | None:
        """The chosen pair, None when neither is given; HTTP 400 when only one is."""
        if bool(self.model_a) != bool(self.model_b):
            raise HTTPException(400, "model_a, model_b: give both models of the pair, or neither")
        return (self.model_a, self.model_b) if self.model_a else None


class VoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vote: Vote


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    completion_id: str = Field(min_length=1, max_length=100)
    score: Literal["up", "down", 1, -1]
    comment: str = Field("", max_length=2000)
    user: str = Field("", max_length=200)


def voter_check(state: ServeState) -> Callable[[str], None]:
    """The dependency of battles and votes: open when `auth.open_arena`, else a signed-in caller (401; 429 while
    the Basic user is locked out after failed sign-ins)."""

    def require_voter(authorization: str = Header("")) -> None:
        if state.workspace.settings.auth.open_arena:
            return
        try:
            if signed_in_user(state.workspace, authorization, state.sign_ins):
                return
        except TooManyFailures as exc:
            raise HTTPException(429, str(exc), {"Retry-After": str(exc.retry_after_s)}) from exc
        raise HTTPException(401, "arena: sign in first (Authorization: Bearer <admin token>, or Basic with a user "
                            "of `llmops auth list`), or set auth.open_arena=true",
                            {"WWW-Authenticate": 'Bearer, Basic realm="llmops"'})

    return require_voter


def arena_routes(state: ServeState) -> APIRouter:
    api = APIRouter()
    rng = random.Random()
    boards = LeaderboardCache(state.workspace)

    @api.post("/v1/arena/battles", dependencies=[Depends(voter_check(state))])
    async def create_battle(request: BattleRequest) -> dict[str, Any]:
        check_prompt(state, [{"role": "user", "content": request.prompt}])
        sampling = sampling_of(state, request)
        try:
            battle = await run_battle(state, request.prompt, request.user, sampling, rng, request.chosen(),
                                      request.shuffle)
        except NoPair as exc:
            raise HTTPException(404, str(exc)) from exc
        shown = {} if request.shuffle else {"model_a": battle.model_a, "model_b": battle.model_b}
        return {"id": battle.id, "prompt": battle.prompt, "response_a": battle.response_a,
                "response_b": battle.response_b, **shown}

    @api.post("/v1/arena/battles/{battle_id}/vote", dependencies=[Depends(voter_check(state))])
    async def vote(battle_id: str, body: VoteBody) -> dict[str, Any]:
        result = await cast_vote(state, battle_id, body.vote)
        if result.status != 200 or result.battle is None:
            raise HTTPException(result.status, result.error)
        battle = result.battle
        return {"id": battle.id, "vote": battle.vote, "vote_id": battle.id, "model_a": battle.model_a,
                "model_b": battle.model_b}

    @api.get("/v1/arena/leaderboard")
    def get_leaderboard(rounds: int = 200) -> dict[str, Any]:
        most = state.settings.leaderboard_max_rounds
        if not 1 <= rounds <= most:
            raise HTTPException(400, f"rounds: {rounds} is outside 1–{most} (serve.leaderboard_max_rounds)")
        return {"ratings": [r.to_dict() for r in boards.get(rounds)]}

    @api.post("/v1/feedback")
    async def feedback(request: FeedbackRequest) -> dict[str, Any]:
        try:
            thumb = await give_thumb(state, request.completion_id, request.score, request.comment, request.user)
        except UnknownCompletion as exc:
            raise HTTPException(404, str(exc)) from exc
        except ForeignCompletion as exc:
            raise HTTPException(403, str(exc)) from exc
        return {"completion_id": thumb.completion_id, "model": thumb.model, "score": thumb.score}

    return api
