"""Issue 15's whole loop, as a new user, in the browser only: a fresh workspace whose base is the tiny model (no
version, no dataset registered), the gateway with the UI started by the test. Sign in → upload a licence, a recipe
and a README → process → save → generate and save instructions → build an eval set → train CPT → train SFT
(chat-v1.0) → promote it → arena battles and votes → "Train DPO now" (chat-v1.1, its win rate, interval and gate
decision shown) → start its rollout → A/B battles between the two chosen versions, the leaderboard filled →
promote. The gate is set so that it fails (`loop.gate_lower_bound=1.0`): the operator starts the rollout anyway,
which the library allows. A screenshot of each tab goes to the test's tmp dir."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from browser import WAIT_MS, browser_page, pick, serving, shot, sign_in
from generic_docs import LICENCE_MD, README_TXT, RECIPE_MD
from llmops.workspace import Workspace, init_workspace

RUN_MS = 600_000
TINY = {"max_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
        "warmup_steps": 0, "cutoff_len": 64, "save_steps": 1000}
SETTINGS = [*(f"train.dpo.{key}={value}" for key, value in TINY.items()), "loop.gate_lower_bound=1.0",
            "loop.bootstrap_samples=200", "serve.max_new_tokens=8"]
DOCUMENTS = {"licence.md": LICENCE_MD, "recipe.md": RECIPE_MD, "toolkit.txt": README_TXT}
INSTRUCTIONS = 24
TYPES = ("classification", "generation", "summarization", "qa", "rewrite", "reasoning")
FIRST_VOTES = ("a", "b", "a", "b", "a", "b")


@pytest.fixture
def fresh_workspace(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Workspace]:
    created = init_workspace(tmp_path / "ws", base_model=str(tiny_model_dir), overrides=SETTINGS)
    yield created
    created.engine.dispose()


def tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def documents(page: Page, folder: Path) -> str:
    """Upload, process and save the corpus; returns the name of the registered dataset."""
    files = []
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
        files.append(str(folder / name))
    page.locator("#documents-upload input[type=file]").set_input_files(files)
    report = page.locator("#corpus-report")
    expect(report).to_contain_text(f"uploaded {len(files)} documents", timeout=WAIT_MS)
    page.locator("#corpus-process").click()
    expect(report).to_contain_text("not saved yet", timeout=WAIT_MS)
    expect(page.locator("#corpus-chunks")).to_contain_text("Widget", timeout=WAIT_MS)
    page.locator("#corpus-save").click()
    expect(report).to_contain_text("✅ saved", timeout=WAIT_MS)
    found = re.search(r"as dataset (\S+) \(version", report.inner_text())
    assert found, report.inner_text()
    return found[1]


def instructions_and_eval_set(page: Page, folder: Path) -> str:
    """Generate, preview and save instructions, then hold a share of them out as the eval set; returns the SFT
    dataset's name."""
    page.locator("#self-instruct-count input").fill(str(INSTRUCTIONS))
    page.locator("#self-instruct-generate").click()
    status = page.locator("#self-instruct-status")
    expect(status).to_contain_text("not saved yet", timeout=WAIT_MS)
    expect(page.locator("#self-instruct-preview")).to_contain_text(re.compile("|".join(TYPES)), timeout=WAIT_MS)
    page.locator("#self-instruct-save").click()
    expect(status).to_contain_text("✅", timeout=WAIT_MS)
    found = re.search(r"as dataset (\S+)", status.inner_text())
    assert found, status.inner_text()
    expect(page.locator("#eval-sft-dataset input")).to_have_value(found[1], timeout=WAIT_MS)
    page.locator("#eval-share input").fill("0.25")
    page.locator("#eval-build").click()
    expect(page.locator("#eval-status")).to_contain_text("✅ eval set", timeout=WAIT_MS)
    expect(page.locator("#eval-status")).to_contain_text("with a reference")
    shot(page, folder, "tab_data")
    return found[1]


def train(page: Page, stage: str, dataset: str, model: str, registers: str, folder: Path) -> None:
    """Train `stage` (CPT | SFT) of `dataset` on `model` (its label) with tiny settings typed into the form's
    number fields; waits until the pipeline registered `registers`."""
    tab(page, "Train")
    tab(page, stage)
    prefix = stage.lower()
    expect(page.locator(f"#{prefix}-dataset input")).to_have_value(dataset, timeout=WAIT_MS)
    expect(page.locator(f"#{prefix}-model input")).to_have_value(model, timeout=WAIT_MS)
    for key, value in TINY.items():
        page.locator(f"#{prefix}-{key} input").fill(str(value))
    page.locator(f"#generate-{prefix}").click()
    expect(page.locator("#config-yaml")).to_contain_text("max_steps: 2", timeout=WAIT_MS)
    expect(page.locator("#config-path textarea")).to_have_value(re.compile(rf"{prefix}_config_"), timeout=WAIT_MS)
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#run-id textarea")).to_have_value(re.compile(r"\S"), timeout=WAIT_MS)
    expect(page.locator("#run-status")).to_contain_text(f"registered {registers}", timeout=RUN_MS)
    expect(page.locator("#run-status")).to_contain_text("succeeded")
    expect(page.locator("#run-history")).to_contain_text("succeeded")
    shot(page, folder, f"tab_train_{prefix}")


def promote(page: Page, model: str | None) -> None:
    """Promote `model` (None: the running rollout's candidate) on the Loop & rollout tab."""
    tab(page, "Loop & rollout")
    if model is not None:
        pick(page, "promote-model", model)
    page.locator("#rollout-promote").click()
    expect(page.locator("#rollout-result")).to_contain_text("promoted chat-v", timeout=WAIT_MS)


def battles(page: Page, pair: tuple[str, str], votes: tuple[str, ...]) -> list[str]:
    """One blind battle of `pair` per vote on the A/B arena tab; returns each battle's revealed result."""
    tab(page, "A/B arena")
    pick(page, "arena-model-a", pair[0])
    pick(page, "arena-model-b", pair[1])
    expect(page.locator("#arena-blind input")).to_be_checked()
    results = []
    for number, vote in enumerate(votes):
        page.locator("#arena-question textarea").fill(f"What does condition {number + 1} of the licence ask?")
        page.locator("#arena-generate").click()
        expect(page.locator("#arena-status")).to_contain_text("which answer is better?", timeout=WAIT_MS)
        expect(page.locator(f"#vote-{vote}")).to_be_enabled()
        page.locator(f"#vote-{vote}").click()
        expect(page.locator("#arena-status")).to_contain_text(f"vote {vote} recorded", timeout=WAIT_MS)
        results.append(page.locator("#arena-status").inner_text())
    return results


def train_dpo_now(page: Page, folder: Path) -> None:
    """"Train DPO now": chat-v1.1 trained on production's votes, evaluated, and refused by the gate."""
    tab(page, "Loop & rollout")
    page.locator("#loop-train-now").click()
    status = page.locator("#loop-train-status")
    expect(status).to_contain_text("gate_failed", timeout=RUN_MS)
    expect(status).to_contain_text("chat-v1.1")
    evaluation = page.locator("#loop-evaluation")
    expect(evaluation).to_contain_text("chat-v1.1 vs chat-v1.0", timeout=WAIT_MS)
    text = evaluation.inner_text()
    found = re.search(r"win rate (\d\.\d{3}), 95% interval \[(\d\.\d{3}), (\d\.\d{3})\]", text)
    assert found, text
    low, rate, high = float(found[2]), float(found[1]), float(found[3])
    assert 0.0 <= low <= rate <= high <= 1.0, text
    assert "gate failed" in text, text
    shot(page, folder, "tab_loop_evaluated")


def rollout(page: Page, folder: Path) -> None:
    """Start the rollout of the gate's rejected candidate anyway."""
    expect(page.locator("#rollout-candidate input")).to_have_value("chat-v1.1", timeout=WAIT_MS)
    page.locator("#rollout-start").click()
    expect(page.locator("#rollout-result")).to_contain_text("✅ rollout of chat-v1.1 started", timeout=WAIT_MS)
    expect(page.locator("#rollout-state")).to_contain_text("candidate chat-v1.1")
    expect(page.locator("#rollout-history")).to_contain_text("started")
    shot(page, folder, "tab_loop_rollout")


@pytest.mark.e2e
@pytest.mark.timeout(1500)
def test_the_whole_loop_in_the_browser(fresh_workspace: Workspace, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serving(fresh_workspace) as url, browser_page() as page:
        sign_in(page, url, fresh_workspace.admin_token(), shots)
        corpus = documents(page, tmp_path)
        sft = instructions_and_eval_set(page, shots)
        base = f"base model ({fresh_workspace.settings.train.base_model})"
        train(page, "CPT", corpus, base, "completion-v1.0", shots)
        train(page, "SFT", sft, "completion-v1.0 (pt)", "chat-v1.0", shots)
        promote(page, "chat-v1.0")
        expect(page.locator("#rollout-state")).to_contain_text("production: chat-v1.0", timeout=WAIT_MS)
        battles(page, ("chat-v1.0", "chat-v1.0"), FIRST_VOTES)
        train_dpo_now(page, shots)
        rollout(page, shots)
        revealed = battles(page, ("chat-v1.0", "chat-v1.1"), ("a", "b", "tie", "both_bad"))
        assert all("chat-v1.0" in r and "chat-v1.1" in r for r in revealed), revealed
        board = page.locator("#arena-leaderboard")
        expect(board).to_contain_text("chat-v1.1", timeout=WAIT_MS)
        expect(board).to_contain_text("chat-v1.0")
        shot(page, shots, "tab_arena")
        promote(page, None)
        expect(page.locator("#rollout-state")).to_contain_text("production: chat-v1.1", timeout=WAIT_MS)
        expect(page.locator("#rollout-history")).to_contain_text("promoted")
        shot(page, shots, "tab_loop_promoted")
        tab(page, "Models")
        expect(page.locator("#models-table")).to_contain_text("production", timeout=WAIT_MS)
        expect(page.locator("#models-table")).to_contain_text("completion-v1.0 → chat-v1.0 → chat-v1.1")
        expect(page.locator("#models-table")).not_to_contain_text("rows x")  # a table, not a DataFrame's repr
        shot(page, shots, "tab_models")
        tab(page, "Monitor")
        expect(page.locator("#monitor-table")).to_contain_text("chat-v1.1", timeout=WAIT_MS)
        shot(page, shots, "tab_monitor")
