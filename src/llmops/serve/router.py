"""Traffic split from the rollout state, sticky per user.

A request for `production` (the default) goes to the running rollout's candidate when the user's bucket
falls below the candidate's traffic share, else to production. The bucket is a hash of the candidate and
the user, so one user sees one version during a stage, and, since shares only grow from stage to stage,
a user moved to the candidate stays there. A request without a user gets a random bucket. Any other name
(`candidate`, `previous`, a version) is served as asked when it is servable (`registry.servable`); an archived or
rejected version only to an operator (`operator=True`, the caller gave the admin token).
"""

import hashlib
import random
from dataclasses import dataclass

from llmops.errors import LLMOpsError
from llmops.models import registry
from llmops.models.registry import ModelVersion
from llmops.models.rollouts import current_rollout
from llmops.workspace import Workspace

DEFAULT_MODEL = "production"


@dataclass(frozen=True)
class Route:
    version: ModelVersion
    reason: str  # asked | production | canary


def user_bucket(user: str, candidate: str) -> float:
    """A stable number in [0, 1) for this user and candidate (random when the user is anonymous)."""
    if not user:
        return random.random()
    digest = hashlib.sha256(f"{candidate}\x00{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def route(workspace: Workspace, requested: str, user: str = "", *, operator: bool = False) -> Route:
    """The version that serves `requested` for `user`; LLMOpsError when it names no version or alias, or a version
    that is not servable (unless `operator`)."""
    requested = requested or DEFAULT_MODEL
    if requested != DEFAULT_MODEL:
        version = registry.resolve(workspace, requested)
        if not operator and not registry.servable(workspace, version):
            raise LLMOpsError(f"model {requested!r}: not available")
        return Route(version, "asked")
    rollout = current_rollout(workspace)
    if rollout is not None and rollout.traffic > 0 and user_bucket(user, rollout.candidate) < rollout.traffic:
        return Route(registry.get_version(workspace, rollout.candidate), "canary")
    return Route(registry.resolve(workspace, DEFAULT_MODEL), "production")
