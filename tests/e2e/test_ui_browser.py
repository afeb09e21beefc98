"""The web UI in a real browser: Playwright drives Debian's Chromium against the gateway (API + UI) started
by the test on 127.0.0.1. Arena: ask, get two answers, vote, see the vote counted. Train: generate an SFT
config of the registered dataset and see its YAML; start a run of the registered tiny model, reload the page
and follow the same run until it succeeds. Screenshots go to pytest's tmp dir (and to $LLMOPS_TEST_ARTIFACTS
when set)."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser import WAIT_MS, browser_page, pick, serving, shot, sign_in
from llmops.data.registry import publish_dataset
from llmops.models import registry
from llmops.workspace import Workspace

RUN_MS = 300_000


@pytest.fixture
def arena_workspace(workspace: Workspace, tiny_model_dir: Path) -> Workspace:
    """A workspace whose production chat model is the tiny test model."""
    version = registry.register_version(workspace, kind="chat", stage="sft", parent=None,
                                        base_model=str(tiny_model_dir), path=str(tiny_model_dir), merged=True)
    registry.set_alias(workspace, "production", version.name)
    return workspace


@pytest.fixture
def server_url(arena_workspace: Workspace) -> Iterator[str]:
    with serving(arena_workspace) as url:
        yield url


@pytest.fixture
def admin_token(arena_workspace: Workspace) -> str:
    return arena_workspace.admin_token()


@pytest.mark.e2e
def test_arena_vote_and_sft_config_in_browser(server_url: str, admin_token: str, sft_dataset: str,
                                              tmp_path: Path) -> None:
    with browser_page() as page:
        sign_in(page, server_url, admin_token, tmp_path)
        page.get_by_role("tab", name="A/B arena").click()
        expect(page.locator("#arena-votes input")).to_have_value("0", timeout=WAIT_MS)
        page.locator("#arena-question textarea").fill("How do I charge the Bluetooth earbuds?")
        page.locator("#arena-generate").click()
        expect(page.locator("#vote-a")).to_be_enabled(timeout=WAIT_MS)
        expect(page.locator("#arena-status")).to_contain_text("which answer is better?")
        answers = [page.locator(f"#arena-answer-{side} textarea").input_value() for side in "ab"]
        assert "".join(answers), "the battle returned two empty answers"
        shot(page, tmp_path, "arena_answers")
        page.locator("#vote-a").click()
        expect(page.locator("#arena-status")).to_contain_text("A was", timeout=WAIT_MS)
        expect(page.locator("#arena-status")).to_contain_text("chat-v1.0")
        expect(page.locator("#arena-votes input")).to_have_value("1", timeout=WAIT_MS)
        shot(page, tmp_path, "arena_voted")

        page.get_by_role("tab", name="Train", exact=True).click()
        page.get_by_role("tab", name="SFT", exact=True).click()
        expect(page.locator("#sft-dataset input")).to_have_value(sft_dataset, timeout=WAIT_MS)
        page.locator("#generate-sft").click()
        expect(page.locator("#config-yaml")).to_contain_text("stage: sft", timeout=WAIT_MS)
        expect(page.locator("#config-path textarea")).to_have_value(
            re.compile(r"sft_config_\d{8}_\d{6}"), timeout=WAIT_MS)
        shot(page, tmp_path, "train_sft_config")
        for tab in ("Data", "Loop & rollout", "Monitor"):
            page.get_by_role("tab", name=tab, exact=True).click()
            shot(page, tmp_path, "tab_" + tab.split()[0].lower())
        expect(page.locator("#monitor-table")).to_contain_text("chat-v1.0")
        page.get_by_role("tab", name="Loop & rollout", exact=True).click()
        expect(page.locator("#rollout-state")).to_contain_text("production: chat-v1.0", timeout=WAIT_MS)
        page.get_by_role("tab", name="Models", exact=True).click()
        expect(page.locator("#models-table")).to_contain_text("chat-v1.0")
        page.get_by_role("link", name="sign out").click()
        expect(page.get_by_role("button", name="Login")).to_be_visible(timeout=WAIT_MS)
        page.reload()
        expect(page.get_by_role("button", name="Login")).to_be_visible(timeout=WAIT_MS)


@pytest.fixture
def sft_dataset(arena_workspace: Workspace, tiny_model_texts: list[str]) -> str:
    rows = [{"messages": [{"role": "user", "content": f"Tell me fact {i}."},
                          {"role": "assistant", "content": text[:120]}]} for i, text in enumerate(tiny_model_texts)]
    path = arena_workspace.stage_data_dir("sft") / "ui_sft.json"
    return publish_dataset(arena_workspace, "ui_sft", path, rows, "sft", "messages").name


@pytest.mark.e2e
def test_train_sft_from_the_browser_survives_a_reload(server_url: str, admin_token: str,
                                                      tiny_model_dir: Path, sft_dataset: str, tmp_path: Path) -> None:
    with browser_page() as page:
        sign_in(page, server_url, admin_token, tmp_path)
        page.get_by_role("tab", name="Train", exact=True).click()
        page.get_by_role("tab", name="SFT", exact=True).click()
        expect(page.locator("#sft-dataset input")).to_have_value(sft_dataset, timeout=60_000)
        pick(page, "sft-model", "chat-v1.0 (sft)")
        page.locator("#overrides-sft textarea").fill("max_steps=3\nlogging_steps=1\nper_device_train_batch_size=2")
        page.locator("#generate-sft").click()
        expect(page.locator("#config-yaml")).to_contain_text("max_steps: 3", timeout=60_000)
        expect(page.locator("#config-yaml")).to_contain_text(str(tiny_model_dir))
        page.get_by_role("button", name="Start training").click()
        run_id = page.locator("#run-id textarea")
        expect(run_id).to_have_value(re.compile(r"^sft-"), timeout=60_000)
        started = run_id.input_value()

        page.reload()
        page.get_by_role("tab", name="Train", exact=True).click()
        expect(page.locator("#run-id textarea")).to_have_value(started, timeout=60_000)
        expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=RUN_MS)
        expect(page.locator("#run-status")).to_contain_text("step 3/3")
        expect(page.locator("#run-log textarea")).not_to_have_value("")
        expect(page.locator("#run-history")).to_contain_text(started)
        shot(page, tmp_path, "train_sft_run")
