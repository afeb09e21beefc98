"""A/B arena tab (spec 6.2.1, 8 step 4): model A and model B chosen from the servable chat versions, a question, two
answers (blind by default: sides shuffled, names hidden), four votes, identities and the result after the vote.

Battles and votes go through the gateway's `POST /v1/arena/battles` and `/vote` routes (GatewayClient),
so the UI stores exactly what the HTTP API stores. Below: the Bradley–Terry leaderboard of the voted battles,
the preference store's counts and the progress towards the DPO trigger (spec 6.3.1, 6.3.2).
"""

from typing import Any

import gradio as gr
import pandas as pd

from llmops.errors import LLMOpsError
from llmops.loop.trigger import should_trigger_dpo_training
from llmops.models import registry
from llmops.serve.leaderboard import LeaderboardCache
from llmops.ui import rollout_view
from llmops.ui.gateway_client import GatewayClient
from llmops.ui.section import Section, failed, frame
from llmops.votes import Vote
from llmops.workspace import Workspace

VOTES = ((Vote.A, "👍 A is better"), (Vote.B, "👍 B is better"), (Vote.TIE, "🤝 Tie"),
         (Vote.BOTH_BAD, "👎 Both are bad"))
NO_GATEWAY = "the arena needs the gateway: start it with `llmops serve` or `llmops ui`"
RESULTS = {Vote.A: "A wins", Vote.B: "B wins", Vote.TIE: "a tie", Vote.BOTH_BAD: "both bad (a tie in the ratings)"}
RATING_COLUMNS = ("model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties")
LEADERBOARD_ROUNDS = 200


def trigger_values(workspace: Workspace) -> tuple[int, int, dict[str, float], str]:
    """(votes, new valid pairs, progress per collection target, why the trigger does or does not fire)."""
    decision = should_trigger_dpo_training(workspace)
    objective = decision.objective.upper()
    verdict = f"🔔 {objective} training should start" if decision.fire else f"{objective} trigger: not yet"
    return (decision.stats.votes, decision.new_pairs, rollout_view.trigger_progress(decision),
            "\n".join([verdict, *decision.reasons]))


def chat_versions(workspace: Workspace) -> list[str]:
    """The servable chat versions (what `POST /v1/arena/battles` accepts as model_a/model_b), newest first."""
    versions = [v for v in registry.list_versions(workspace) if registry.arena_ready(workspace, v)]
    return [v.name for v in reversed(versions)]


def default_pair(workspace: Workspace, names: list[str]) -> tuple[str | None, str | None]:
    """(production, the newest other version); production twice when it is the only one."""
    production = registry.aliases(workspace).get("production")
    first = production if production in names else next(iter(names), None)
    return first, next((name for name in names if name != first), first)


def model_choices(workspace: Workspace) -> list[Any]:
    """The two dropdowns' updates: every servable chat version, the default pair selected."""
    names = chat_versions(workspace)
    first, second = default_pair(workspace, names)
    return [gr.update(choices=names, value=first), gr.update(choices=names, value=second)]


def ratings_table(board: LeaderboardCache) -> pd.DataFrame:
    """The leaderboard of every voted battle between two versions, ratings rounded to one decimal."""
    rows = [{**r.to_dict(), **{k: round(getattr(r, k), 1) for k in ("rating", "ci_low", "ci_high")}}
            for r in board.get(LEADERBOARD_ROUNDS)]
    return frame(rows, RATING_COLUMNS)


def question_text(first: str, second: str) -> str:
    """The status once both answers are shown; says so when one version answers on both sides, whose votes are
    preference pairs but never rated (the leaderboard and win rates count battles of two versions only)."""
    if first != second:
        return "which answer is better?"
    return (f"which answer is better? (both answers are from **{first}**: the vote is a preference pair for DPO, "
            "the leaderboard rates only battles of two different versions)")


def _reveal(result: dict[str, Any], vote: Vote) -> str:
    return (f"✅ vote `{vote}` recorded: {RESULTS[vote]} — A was **{result['model_a']}**, "
            f"B was **{result['model_b']}**")


def _answers(names: tuple[str, str] | None, texts: tuple[str, str] | None = None) -> list[Any]:
    """The two answer boxes' updates: labelled with the models' names once they are known; `texts` when given."""
    labels = [f"Answer {side}" + ("" if names is None else f" — {names[i]}") for i, side in enumerate("AB")]
    if texts is None:
        return [gr.update(label=label) for label in labels]
    return [gr.update(label=label, value=text) for label, text in zip(labels, texts, strict=True)]


def _pickers() -> tuple[gr.Dropdown, gr.Dropdown, gr.Checkbox]:
    with gr.Row():
        model_a = gr.Dropdown(label="Model A", choices=[], elem_id="arena-model-a")
        model_b = gr.Dropdown(label="Model B", choices=[], elem_id="arena-model-b")
        blind = gr.Checkbox(label="Blind (shuffle the sides, names shown after the vote)", value=True,
                            elem_id="arena-blind")
    return model_a, model_b, blind


def _counters() -> list[Any]:
    with gr.Row():
        votes = gr.Number(label="Votes since the last DPO or KTO version", precision=0, interactive=False,
                          elem_id="arena-votes")
        pairs = gr.Number(label="New valid pairs since the last DPO", precision=0, interactive=False)
        progress = gr.Label(label="Progress towards the DPO trigger", show_label=True)
    reasons = gr.Textbox(label="Trigger", lines=5, interactive=False)  # its five reasons, none cut off
    return [votes, pairs, progress, reasons]


def render(workspace: Workspace, client: GatewayClient | None) -> Section:
    model_a, model_b, blind = _pickers()
    with gr.Row():
        question = gr.Textbox(label="Question", placeholder="Ask something…", scale=4, elem_id="arena-question")
        generate_btn = gr.Button("🎲 Generate two answers", variant="primary", scale=1, elem_id="arena-generate")
    with gr.Row():
        answers = [gr.Textbox(label=f"Answer {side.upper()}", lines=8, interactive=False,
                              elem_id=f"arena-answer-{side}") for side in "ab"]
    with gr.Row():
        buttons = [gr.Button(label, interactive=False, elem_id=f"vote-{key}") for key, label in VOTES]
    battle_id = gr.State("")
    status = gr.Markdown(NO_GATEWAY if client is None else "", elem_id="arena-status")
    board = LeaderboardCache(workspace)
    ratings = gr.Dataframe(label="Leaderboard (Bradley–Terry, 95% bootstrap interval)", headers=list(RATING_COLUMNS),
                           interactive=False, elem_id="arena-leaderboard")
    counters = _counters()

    async def generate(prompt: str, first: str | None, second: str | None, hidden: bool) -> list[Any]:
        try:
            if client is None:
                raise LLMOpsError(NO_GATEWAY)
            if not first or not second:
                raise LLMOpsError("model A, model B: choose two chat versions (none is registered yet)")
            if not prompt.strip():
                raise LLMOpsError("question: type a question for the two models first")
            battle = await client.battle(prompt, pair=(first, second), shuffle=hidden)
        except LLMOpsError as exc:
            return ["", *_answers(None, ("", "")), failed(exc), *[gr.update(interactive=False)] * len(buttons)]
        names = None if hidden else (battle["model_a"], battle["model_b"])
        texts = (battle["response_a"], battle["response_b"])
        return [battle["id"], *_answers(names, texts), question_text(first, second),
                *[gr.update(interactive=True)] * len(buttons)]

    generate_btn.click(generate, inputs=[question, model_a, model_b, blind],
                       outputs=[battle_id, *answers, status, *buttons])
    for (key, _), button in zip(VOTES, buttons, strict=True):
        _bind_vote(workspace, client, key, button, battle_id, [status, *answers, *buttons, ratings, *counters], board)

    def load() -> list[Any]:
        return [*model_choices(workspace), ratings_table(board), *trigger_values(workspace)]

    return Section("arena", load, [model_a, model_b, ratings, *counters])


def _bind_vote(workspace: Workspace, client: GatewayClient | None, key: Vote, button: gr.Button,
               battle_id: gr.State, outputs: list[Any], board: LeaderboardCache) -> None:
    locked = [gr.update(interactive=False)] * len(VOTES)

    async def vote(current: str) -> list[Any]:
        try:
            if client is None or not current:
                raise LLMOpsError(NO_GATEWAY if client is None else "generate two answers first")
            result = await client.vote(current, key)
        except LLMOpsError as exc:
            return [failed(exc), *_answers(None), *locked, ratings_table(board), *trigger_values(workspace)]
        names = (result["model_a"], result["model_b"])
        return [_reveal(result, key), *_answers(names), *locked, ratings_table(board), *trigger_values(workspace)]

    button.click(vote, inputs=battle_id, outputs=outputs)
