"""Traffic split: the candidate gets its share, each user sticks to one version, no rollout → production."""

import pytest

from llmops.models import registry
from llmops.models.rollouts import rollback, start_rollout
from llmops.serve.router import route, user_bucket
from llmops.workspace import Workspace

pytestmark = pytest.mark.store


@pytest.fixture
def versions(workspace: Workspace) -> Workspace:
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p",
                                  merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    return workspace


def test_without_rollout_production_serves(versions: Workspace) -> None:
    assert route(versions, "production", "alice").version.name == "chat-v1.0"
    assert route(versions, "", "").reason == "production"
    assert route(versions, "chat-v2.0", "alice").reason == "asked"


def test_candidate_gets_its_share_sticky_per_user(versions: Workspace) -> None:
    start_rollout(versions, "chat-v2.0", by="cli")  # first stage: 5%
    users = [f"user-{i}" for i in range(2000)]
    first = {u: route(versions, "production", u).version.name for u in users}
    again = {u: route(versions, "production", u).version.name for u in users}
    assert first == again
    share = sum(name == "chat-v2.0" for name in first.values()) / len(users)
    assert 0.03 < share < 0.07
    rollback(versions, by="cli")
    assert {route(versions, "production", u).version.name for u in users} == {"chat-v1.0"}


def test_buckets_are_stable_and_uniform() -> None:
    assert user_bucket("alice", "chat-v2.0") == user_bucket("alice", "chat-v2.0")
    assert user_bucket("alice", "chat-v2.0") != user_bucket("alice", "chat-v3.0")
    buckets = [user_bucket(f"u{i}", "c") for i in range(4000)]
    assert all(0 <= b < 1 for b in buckets)
    assert 0.45 < sum(b < 0.5 for b in buckets) / len(buckets) < 0.55


def test_unknown_names_raise(versions: Workspace) -> None:
    with pytest.raises(Exception, match="not registered"):
        route(versions, "chat-v7.0", "")
