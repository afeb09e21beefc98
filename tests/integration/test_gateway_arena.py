"""Arena round-trip with the real engine: battle → vote over HTTP → one pair in the store and in `prefs export`."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import torch
from sqlalchemy import select

from llmops import db
from llmops.data.preferences import export_preferences
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace, open_workspace

pytestmark = pytest.mark.integration


def test_battle_vote_round_trip_lands_in_prefs_export(workspace: Workspace, tiny_model_dir: Path) -> None:
    registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model=str(tiny_model_dir),
                              path=str(tiny_model_dir), merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    torch.manual_seed(0)

    async def round_trip() -> tuple[dict[str, str], httpx.Response, httpx.Response]:
        app = create_app(open_workspace(workspace.root, ["auth.open_arena=true"]))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=60) as client:
                created = await client.post("/v1/arena/battles", json={
                    "prompt": "How do I charge the power bank?", "user": "tester", "temperature": 1.0,
                    "max_tokens": 16})
                battle = created.json()
                voted = await client.post(f"/v1/arena/battles/{battle['id']}/vote", json={"vote": "b"})
                again = await client.post(f"/v1/arena/battles/{battle['id']}/vote", json={"vote": "a"})
                return battle, voted, again

    battle, voted, again = asyncio.run(round_trip())
    assert voted.status_code == 200 and again.status_code == 409
    assert voted.json()["model_a"] == voted.json()["model_b"] == "chat-v1.0"  # no candidate: two samples
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(db.votes)).all()
    assert len(rows) == 1 and rows[0].choice == "b" and rows[0].meta["battle_id"] == battle["id"]
    assert rows[0].meta["version_a"] == "v1.0" and rows[0].meta["sampling"]["max_tokens"] == 16
    assert battle["response_a"] != battle["response_b"]  # two samples (seeded), which the export keeps
    report = export_preferences(workspace)
    pairs = [json.loads(line) for line in report.latest_path.read_text(encoding="utf-8").splitlines()]
    assert len(pairs) == 1
    assert pairs[0]["chosen"]["content"] == battle["response_b"]
    assert pairs[0]["rejected"]["content"] == battle["response_a"]
    assert pairs[0]["conversations"] == [{"role": "user", "content": "How do I charge the power bank?"}]
