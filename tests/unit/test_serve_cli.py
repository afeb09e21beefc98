"""`llmops arena leaderboard` (table and JSON) and the top-level `llmops serve` command's options."""

import json

from typer.testing import CliRunner

from llmops.cli import app
from llmops.serve.arena import Battle, insert_battle, new_battle
from llmops.workspace import Workspace

runner = CliRunner()


def test_leaderboard_command(workspace: Workspace) -> None:
    empty = runner.invoke(app, ["arena", "leaderboard", "-w", str(workspace.root)])
    assert empty.exit_code == 0 and "no voted battles" in empty.output
    with workspace.engine.begin() as conn:
        for vote in ("a", "a", "b", "tie"):
            battle = new_battle("q", "u", ("chat-v1.1", "chat-v1.0"), ("x", "y"), {})
            insert_battle(conn, Battle(**{**battle.to_dict(), "vote": vote, "voted_at": 1.0}))
    table = runner.invoke(app, ["arena", "leaderboard", "-w", str(workspace.root), "--rounds", "20"])
    assert table.exit_code == 0 and "chat-v1.1" in table.output
    as_json = runner.invoke(app, ["arena", "leaderboard", "-w", str(workspace.root), "--json", "--rounds", "20"])
    ratings = json.loads(as_json.output)
    assert [r["model"] for r in ratings] == ["chat-v1.1", "chat-v1.0"]
    assert (ratings[0]["wins"], ratings[0]["losses"], ratings[0]["ties"]) == (2, 1, 1)


def test_serve_is_a_top_level_command() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output
