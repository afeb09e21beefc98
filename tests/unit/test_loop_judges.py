import json
import time
from collections.abc import Sequence

import httpx
import pytest
from openai import OpenAI

from llmops import db
from llmops.errors import LLMOpsError
from llmops.loop.evaluate import EvalItem, evaluate_model_improvement
from llmops.loop.judges import HumanVoteJudge, LLMJudge, parse_verdict
from llmops.votes import Vote
from llmops.workspace import Workspace


def _answers(model: str, prompts: Sequence[str]) -> list[str]:
    return [f"{model} says {p}" for p in prompts]


def _judge_endpoint(rule: str) -> tuple[OpenAI, list[str]]:
    """An OpenAI-compatible chat endpoint in memory; `rule` picks the verdict from the two answers."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        content = json.loads(request.content)["messages"][0]["content"]
        seen.append(content)
        first = content.split("Answer A:\n")[1].split("\n")[0]
        if rule == "prefers new":
            verdict = "A" if first.startswith("new") else "B"
        elif rule == "position":
            verdict = "A"
        else:
            return httpx.Response(500, json={"error": {"message": "down"}})
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": "judge",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"{verdict}."}}]}
        return httpx.Response(200, json=body)

    client = OpenAI(base_url="http://judge.test/v1", api_key="k", max_retries=0,
                    http_client=httpx.Client(transport=httpx.MockTransport(handle)))
    return client, seen


def test_parse_verdict() -> None:
    assert parse_verdict("B is better") is Vote.B
    assert parse_verdict("a") is Vote.A
    assert parse_verdict("Tie.") is Vote.TIE
    assert parse_verdict("neither") is Vote.TIE


def test_llm_judge_asks_both_orders() -> None:
    client, seen = _judge_endpoint("prefers new")
    items = [EvalItem(f"q{i}") for i in range(5)]
    ev = evaluate_model_improvement("old", "new", items, LLMJudge(_answers, client, "judge"))
    assert (ev.win_rate, ev.consistency, ev.comparisons) == (1.0, 1.0, 5)
    assert len(seen) == 10
    assert "Answer A:\nnew says q0" in seen[0] and "Answer A:\nold says q0" in seen[1]


def test_llm_judge_position_bias_counts_as_tie() -> None:
    client, _ = _judge_endpoint("position")
    ev = evaluate_model_improvement("old", "new", [EvalItem("q")], LLMJudge(_answers, client, "judge"))
    assert (ev.win_rate, ev.ties, ev.consistency) == (0.5, 1, 0.0)


def test_llm_judge_endpoint_failure_is_a_clear_error() -> None:
    client, _ = _judge_endpoint("down")
    with pytest.raises(LLMOpsError, match="LLM judge judge: request failed"):
        LLMJudge(_answers, client, "judge").compare("old", "new", [EvalItem("q")])


def _battle(workspace: Workspace, n: int, prompt: str, a: str, b: str, vote: str | None) -> None:
    with workspace.engine.begin() as conn:
        conn.execute(db.battles.insert().values(
            id=f"b{n}", created_at=time.time(), prompt=prompt, model_a=a, model_b=b, response_a="x",
            response_b="y", vote=vote, voted_at=time.time() if vote else None,
        ))


def test_human_vote_judge_reads_arena_battles(workspace: Workspace) -> None:
    _battle(workspace, 1, "p1", "new", "old", "a")
    _battle(workspace, 2, "p1", "old", "new", "b")
    _battle(workspace, 3, "p1", "old", "new", "a")
    _battle(workspace, 4, "p2", "old", "new", "tie")
    _battle(workspace, 5, "p3", "old", "new", None)
    _battle(workspace, 6, "p4", "new", "other", "a")
    _battle(workspace, 7, "p5", "new", "old", "both_bad")
    ev = evaluate_model_improvement("old", "new", [], HumanVoteJudge(workspace))
    assert (ev.comparisons, ev.wins, ev.losses, ev.ties) == (5, 2, 1, 2)
    assert ev.consistency == pytest.approx(4 / 5)
    only_p2 = evaluate_model_improvement("old", "new", [EvalItem("p2")], HumanVoteJudge(workspace))
    assert (only_p2.comparisons, only_p2.win_rate) == (1, 0.5)
