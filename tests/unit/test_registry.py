"""Model registry: naming, lineage, aliases, promote and rollback (models/rollouts.py, without a rollout)."""

import pytest

from llmops.errors import LLMOpsError
from llmops.models import registry, rollouts
from llmops.workspace import Workspace

pytestmark = pytest.mark.store


def _add(workspace: Workspace, kind: str, stage: str, parent: str | None = None) -> registry.ModelVersion:
    return registry.register_version(
        workspace, kind=kind, stage=stage, parent=parent, base_model="/base", path=f"/models/{kind}-{stage}",
        merged=stage != "dpo", datasets=[{"name": "d", "sha256": "ab"}], metrics={"train_loss": 1.5},
    )


def test_versions_follow_spec_naming(workspace: Workspace) -> None:
    completion = _add(workspace, "completion", "pt")
    chat = _add(workspace, "chat", "sft", parent=completion.name)
    dpo1 = _add(workspace, "chat", "dpo", parent=chat.name)
    dpo2 = _add(workspace, "chat", "dpo", parent=dpo1.name)
    offline2 = _add(workspace, "chat", "sft", parent=completion.name)
    assert [completion.name, chat.name, dpo1.name, dpo2.name, offline2.name] == [
        "completion-v1.0", "chat-v1.0", "chat-v1.1", "chat-v1.2", "chat-v2.0",
    ]
    assert registry.next_version(workspace, "chat", major=False) == "v2.1"
    assert registry.next_version(workspace, "chat", major=False, parent=dpo2.name) == "v1.3"
    assert _add(workspace, "chat", "dpo", parent=chat.name).name == "chat-v1.3"  # the parent's major, not v2
    assert registry.next_version(workspace, "chat", major=False, parent=completion.name) == "v2.1"
    assert registry.next_version(workspace, "chat", major=True) == "v3.0"
    latest = registry.latest_version(workspace, "chat")
    assert latest is not None and latest.name == "chat-v2.0"
    assert registry.latest_version(workspace, "completion") == completion


def test_latest_version_of_empty_registry_is_none(workspace: Workspace) -> None:
    assert registry.latest_version(workspace, "chat") is None


def test_lineage_round_trips(workspace: Workspace) -> None:
    base = _add(workspace, "chat", "sft")
    child = _add(workspace, "chat", "dpo", parent=base.name)
    loaded = registry.get_version(workspace, child.name)
    assert loaded == child
    assert loaded.parent == "chat-v1.0" and loaded.is_adapter and loaded.datasets[0]["sha256"] == "ab"
    assert [v.name for v in registry.list_versions(workspace)] == ["chat-v1.0", "chat-v1.1"]


@pytest.mark.parametrize("name", ["../etc", "chat-v1.0/..", "chat v1", "chat-1.0", "", "Chat-v1.0"])
def test_bad_names_are_rejected(workspace: Workspace, name: str) -> None:
    with pytest.raises(LLMOpsError, match="not a version name"):
        registry.get_version(workspace, name)


def test_unknown_parent_and_duplicates_are_rejected(workspace: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="not registered"):
        _add(workspace, "chat", "dpo", parent="chat-v9.0")
    _add(workspace, "chat", "sft")
    with pytest.raises(LLMOpsError, match="already registered"):
        registry.register_version(
            workspace, kind="chat", stage="sft", parent=None, base_model="b", path="p", merged=True, version="v1.0"
        )
    assert len(registry.list_versions(workspace)) == 1


def test_aliases_resolve_promote_and_rollback(workspace: Workspace) -> None:
    v10 = _add(workspace, "chat", "sft")
    v11 = _add(workspace, "chat", "dpo", parent=v10.name)
    with pytest.raises(LLMOpsError, match="not set"):
        registry.resolve(workspace, "production")
    assert rollouts.promote(workspace, v10.name, by="cli").displaced is None
    registry.set_alias(workspace, "candidate", v11.name)
    assert registry.resolve(workspace, "candidate") == v11
    assert rollouts.promote(workspace, v11.name, by="cli").displaced == v10.name
    assert registry.aliases(workspace) == {"production": v11.name, "previous": v10.name}
    assert rollouts.rollback(workspace, by="cli").production == v10.name
    assert registry.aliases(workspace) == {"production": v10.name, "previous": v11.name}
    registry.remove_alias(workspace, "previous")
    with pytest.raises(LLMOpsError, match="no `previous`"):
        rollouts.rollback(workspace, by="cli")


def test_alias_rules(workspace: Workspace) -> None:
    with pytest.raises(LLMOpsError, match="expected one of"):
        registry.set_alias(workspace, "staging", "chat-v1.0")
    with pytest.raises(LLMOpsError, match="not registered"):
        registry.set_alias(workspace, "production", "chat-v1.0")
