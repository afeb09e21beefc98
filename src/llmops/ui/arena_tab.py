"""A/B arena tab (spec 6.2.1): a question, two anonymous answers, four votes, identities after the vote.

Battles and votes go through the gateway's `POST /v1/arena/battles` and `/vote` routes (GatewayClient),
so the UI stores exactly what the HTTP API stores. The panel below shows the preference store's counts
and the progress towards the DPO trigger (spec 6.3.1, 6.3.2).
"""

from typing import Any

import gradio as gr

from llmops.errors import LLMOpsError
from llmops.loop.trigger import should_trigger_dpo_training
from llmops.ui.gateway_client import GatewayClient
from llmops.ui.section import Section, failed
from llmops.votes import Vote
from llmops.workspace import Workspace

VOTES = ((Vote.A, "👍 A is better"), (Vote.B, "👍 B is better"), (Vote.TIE, "🤝 Tie"),
         (Vote.BOTH_BAD, "👎 Both are bad"))
NO_GATEWAY = "the arena needs the gateway: start it with `llmops serve` or `llmops ui`"


def trigger_values(workspace: Workspace) -> tuple[int, int, dict[str, float], str]:
    """(votes, new valid pairs, progress per collection target, why the trigger does or does not fire)."""
    decision = should_trigger_dpo_training(workspace)
    targets = {"min": decision.min_samples, "target": decision.target_samples, "optimal": decision.optimal_samples}
    progress = {f"{name} ({goal} pairs)": share for (name, goal), share in
                zip(targets.items(), decision.progress().values(), strict=True)}
    verdict = "🔔 DPO training should start" if decision.fire else "DPO trigger: not yet"
    return decision.stats.votes, decision.new_pairs, progress, "\n".join([verdict, *decision.reasons])


def _reveal(result: dict[str, Any], vote: Vote) -> str:
    return f"✅ vote `{vote}` recorded — A was **{result['model_a']}**, B was **{result['model_b']}**"


def render(workspace: Workspace, client: GatewayClient | None) -> Section:
    with gr.Row():
        question = gr.Textbox(label="Question", placeholder="Ask something…", scale=4, elem_id="arena-question")
        generate_btn = gr.Button("🎲 Generate two answers", variant="primary", scale=1, elem_id="arena-generate")
    with gr.Row():
        answer_a = gr.Textbox(label="Answer A", lines=8, interactive=False, elem_id="arena-answer-a")
        answer_b = gr.Textbox(label="Answer B", lines=8, interactive=False, elem_id="arena-answer-b")
    with gr.Row():
        buttons = [gr.Button(label, interactive=False, elem_id=f"vote-{key}") for key, label in VOTES]
    battle_id = gr.State("")
    status = gr.Markdown(NO_GATEWAY if client is None else "", elem_id="arena-status")
    with gr.Row():
        votes = gr.Number(label="Votes since the last DPO version", precision=0, interactive=False,
                          elem_id="arena-votes")
        pairs = gr.Number(label="New valid pairs since the last DPO", precision=0, interactive=False)
        progress = gr.Label(label="Progress towards the DPO trigger", show_label=True)
    reasons = gr.Textbox(label="Trigger", lines=3, interactive=False)
    counters = [votes, pairs, progress, reasons]

    async def generate(prompt: str) -> list[Any]:
        locked = [gr.update(interactive=False)] * len(buttons)
        try:
            if client is None:
                raise LLMOpsError(NO_GATEWAY)
            battle = await client.battle(prompt)
        except LLMOpsError as exc:
            return ["", "", "", failed(exc), *locked]
        unlocked = [gr.update(interactive=True)] * len(buttons)
        return [battle["id"], battle["response_a"], battle["response_b"], "which answer is better?", *unlocked]

    generate_btn.click(generate, inputs=question, outputs=[battle_id, answer_a, answer_b, status, *buttons])
    for (key, _), button in zip(VOTES, buttons, strict=True):
        _bind_vote(workspace, client, key, button, battle_id, [status, *buttons, *counters])

    def load() -> list[Any]:
        return list(trigger_values(workspace))

    return Section("arena", load, counters)


def _bind_vote(workspace: Workspace, client: GatewayClient | None, key: Vote, button: gr.Button,
               battle_id: gr.State, outputs: list[Any]) -> None:
    count = len(VOTES)

    async def vote(current: str) -> list[Any]:
        locked = [gr.update(interactive=False)] * count
        try:
            if client is None or not current:
                raise LLMOpsError(NO_GATEWAY if client is None else "generate two answers first")
            result = await client.vote(current, key)
        except LLMOpsError as exc:
            return [failed(exc), *locked, *trigger_values(workspace)]
        return [_reveal(result, key), *locked, *trigger_values(workspace)]

    button.click(vote, inputs=battle_id, outputs=outputs)
