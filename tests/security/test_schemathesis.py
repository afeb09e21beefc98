"""Schemathesis against the gateway's `/openapi.json`: every operation, valid and invalid requests, anonymous
and with the admin token. No answer is a 5xx, none takes longer than the per-call deadline, and an admin
route without the token never succeeds. The app runs in process (schemathesis' ASGI loader) on fake backends.
"""

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi

from fakes import Echo
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace

MAX_EXAMPLES = 30
DEADLINE_S = 10.0
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@pytest.fixture
def gateway(workspace: Workspace) -> Iterator[tuple[schemathesis.BaseSchema, str]]:
    """The gateway's schema (its app attached) and the admin token; the app's lifespan ends with the test."""
    for _ in range(2):
        registry.register_version(workspace, kind="chat", stage="sft", parent=None, base_model="base",
                                  path="/nonexistent", merged=True)
    registry.set_alias(workspace, "production", "chat-v1.0")
    app = create_app(workspace, backends={"chat-v1.0": Echo(), "chat-v2.0": Echo()})
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app), workspace.admin_token()
    finally:
        asgi.shutdown_lifespans()


def _problem(case: schemathesis.Case, admin: bool) -> str | None:
    """What is wrong with the gateway's answer to `case`, or None."""
    curl = case.as_curl_command()
    try:
        response = case.call(timeout=DEADLINE_S)
    except requests.exceptions.Timeout:
        return f"no answer within {DEADLINE_S} s: {curl}"
    except Exception as exc:  # the in-process transport re-raises what the app did not handle (a 500 on the wire)
        return f"500, the app raised {exc!r}: {curl}"
    try:
        case.validate_response(response, checks=[not_a_server_error])
    except FailureGroup as failure:
        return f"{response.status_code} {response.text[:300]!r}: {curl}\n{failure}"
    if case.operation.path.startswith("/v1/admin/") and not admin and response.status_code < 400:
        return f"admin route answered {response.status_code} without the token: {curl}"
    return None


def _explore(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode, token: str | None,
             problems: list[str]) -> None:
    headers = {"authorization": f"Bearer {token}"} if token else None

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def run(case: schemathesis.Case) -> None:
        problem = _problem(case, admin=token is not None)
        if problem is not None:
            problems.append(f"{operation.label} ({mode}): {problem}")

    try:
        run()
    except Unsatisfiable:
        if mode.is_positive:
            raise  # an operation with no valid request is a broken schema; with no invalid one, nothing to send


@pytest.mark.parametrize("admin", [False, True], ids=["anonymous", "admin-token"])
def test_no_operation_answers_5xx_or_hangs(gateway: tuple[schemathesis.BaseSchema, str], admin: bool) -> None:
    schema, token = gateway
    problems: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/feedback", "/v1/admin/rollout"}
    for operation in operations:
        for mode in MODES:
            _explore(operation, mode, token if admin else None, problems)
    assert not problems, "\n\n".join(problems)
