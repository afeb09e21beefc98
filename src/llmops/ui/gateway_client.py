"""The UI's actions on serving state go through the gateway's own HTTP routes, in process.

Arena battles and votes, starting a rollout, promotion and rollback run exactly the code of `POST
/v1/arena/battles`, `/vote`, `/v1/admin/rollout`, `/v1/admin/promote` and `/v1/admin/rollback` (validation,
metrics, token check included):
the UI sends the request to the app it is mounted in through httpx's ASGI transport, no socket.
Behind the UI's sign-in, battles and votes carry the admin token (`arena_token`), so they work for a
signed-in operator when the arena is closed; the voters' page at /arena sends none.
"""

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from llmops.errors import LLMOpsError
from llmops.votes import Vote


class GatewayClient:
    """Calls the routes of one gateway app; a 4xx/5xx answer becomes an LLMOpsError with its message."""

    def __init__(self, app: FastAPI, arena_token: Callable[[], str] | None = None) -> None:
        self.app = app
        self.arena_token = arena_token

    async def _post(self, path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=None) as client:
            response = await client.post(path, json=body, headers=headers)
        try:
            payload: dict[str, Any] = response.json()
        except ValueError:
            payload = {"error": {"message": response.text}}
        if response.status_code >= 400:
            error = payload.get("error", {})
            raise LLMOpsError(f"{path}: {error.get('message', response.text)} (HTTP {response.status_code})")
        return payload

    async def battle(self, prompt: str, user: str = "", pair: tuple[str, str] | None = None,
                     shuffle: bool = True) -> dict[str, Any]:
        """Two answers to `prompt`, of the chosen `pair` (model_a, model_b) or the gateway's own pair: {id, prompt,
        response_a, response_b}, and model_a, model_b when not `shuffle`d (the identities are not hidden)."""
        chosen = {"model_a": pair[0], "model_b": pair[1]} if pair is not None else {}
        body = {"prompt": prompt, "user": user, "shuffle": shuffle, **chosen}
        return await self._post("/v1/arena/battles", body, self._arena_token())

    async def vote(self, battle_id: str, vote: Vote) -> dict[str, Any]:
        """Vote on a battle; the answer reveals model_a and model_b."""
        return await self._post(f"/v1/arena/battles/{battle_id}/vote", {"vote": vote}, self._arena_token())

    def _arena_token(self) -> str:
        return self.arena_token() if self.arena_token is not None else ""

    async def start_rollout(self, token: str, candidate: str) -> dict[str, Any]:
        """Start the first canary stage of `candidate` with the admin token: {candidate, production, traffic}."""
        return await self._post("/v1/admin/rollout", {"candidate": candidate, "by": "ui"}, token)

    async def promote(self, token: str, model: str = "") -> dict[str, Any]:
        """Promote `model` (or the running rollout's candidate when empty) with the admin token."""
        return await self._post("/v1/admin/promote", {"model": model, "by": "ui"}, token)

    async def rollback(self, token: str) -> dict[str, Any]:
        """Roll back the running rollout, or production to `previous`, with the admin token."""
        return await self._post("/v1/admin/rollback", {"by": "ui"}, token)
