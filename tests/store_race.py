"""Workers of the store concurrency tests: each runs in its own process (multiprocessing 'spawn'), opens the
workspace itself, and acts at the same moment as the others (a barrier shared with the test)."""

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from llmops import db
from llmops.data.preferences import PreferenceCollector
from llmops.errors import LLMOpsError
from llmops.models import rollouts
from llmops.serve.arena import VoteRequest, record_votes
from llmops.votes import Vote
from llmops.workspace import open_workspace


def vote(root: Path, battle_ids: list[str], choice: str, barrier: Barrier, results: "Queue[Any]") -> None:
    """Votes `choice` on each battle in turn, each vote at the same moment as the other worker's."""
    workspace = open_workspace(root)
    collector = PreferenceCollector(workspace)
    for battle_id in battle_ids:
        barrier.wait(60)
        try:
            status: int | str = record_votes(workspace, collector, [VoteRequest(battle_id, Vote(choice))])[0].status
        except Exception as exc:
            status = f"{type(exc).__name__}: {exc}"
        results.put((battle_id, choice, status))
    workspace.engine.dispose()


def change(root: Path, actions: list[str], barrier: Barrier, results: "Queue[Any]") -> None:
    """Each round, after the test has started a rollout: reads it, then `promote`s or `rollback`s it (as the loop
    does: `expected` is the rollout read) at the same moment as the other worker; puts (round, action, outcome):
    done, refused (an LLMOpsError) or any other error."""
    workspace = open_workspace(root)
    for index, action in enumerate(actions):
        barrier.wait(60)
        expected = rollouts.current_rollout(workspace)
        barrier.wait(60)
        try:
            if action == "promote":
                rollouts.promote(workspace, by="loop", expected=expected)
            else:
                rollouts.rollback(workspace, by="admin", expected=expected)
            results.put((index, action, "done"))
        except LLMOpsError:
            results.put((index, action, "refused"))
        except Exception as exc:
            results.put((index, action, f"{type(exc).__name__}: {exc}"))
    workspace.engine.dispose()


def connect(url: str, barrier: Barrier, results: "Queue[Any]") -> None:
    """Opens the store at `url` (creating its schema when none is there) at the same moment as the others."""
    barrier.wait(60)
    try:
        db.connect(url).dispose()
        results.put("")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
