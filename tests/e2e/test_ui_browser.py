"""The web UI in a real browser: Playwright drives Debian's Chromium against the gateway (API + UI) started
by the test on 127.0.0.1. Arena: ask, get two answers, vote, see the vote counted. Train: generate an SFT
config and see its YAML; start a run of the tiny model, reload the page and follow the same run until it
succeeds. Screenshots go to pytest's tmp dir (and to $LLMOPS_TEST_ARTIFACTS when set)."""

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from llmops.data.registry import publish_dataset
from llmops.models import registry
from llmops.serve.gateway import create_app
from llmops.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000
RUN_MS = 300_000


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing (CI runs as root)."""
    if not CHROMIUM.exists():
        subprocess.run("apt-get update && apt-get install -y chromium", shell=True, check=True)
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def arena_workspace(workspace: Workspace, tiny_model_dir: Path) -> Workspace:
    """A workspace whose production chat model is the tiny test model."""
    version = registry.register_version(workspace, kind="chat", stage="sft", parent=None,
                                        base_model=str(tiny_model_dir), path=str(tiny_model_dir), merged=True)
    registry.promote(workspace, version.name)
    return workspace


@pytest.fixture
def server_url(arena_workspace: Workspace) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(create_app(arena_workspace), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def shot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("LLMOPS_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


@pytest.mark.e2e
def test_arena_vote_and_sft_config_in_browser(chromium: Path, server_url: str, tmp_path: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server_url}/ui/")
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
            page.locator("#generate-sft").click()
            expect(page.locator("#config-yaml")).to_contain_text("stage: sft", timeout=WAIT_MS)
            expect(page.locator("#config-path textarea")).to_have_value(
                re.compile(r"sft_config_\d{8}_\d{6}"), timeout=WAIT_MS)
            shot(page, tmp_path, "train_sft_config")
            for tab in ("Data", "Models & rollout", "Monitor"):
                page.get_by_role("tab", name=tab, exact=True).click()
                shot(page, tmp_path, "tab_" + tab.split()[0].lower())
            expect(page.locator("#monitor-table")).to_contain_text("chat-v1.0")
            page.get_by_role("tab", name="Models & rollout", exact=True).click()
            expect(page.locator("#models-table")).to_contain_text("chat-v1.0")
        finally:
            browser.close()


@pytest.fixture
def sft_dataset(arena_workspace: Workspace, tiny_model_texts: list[str]) -> str:
    rows = [{"messages": [{"role": "user", "content": f"Tell me fact {i}."},
                          {"role": "assistant", "content": text[:120]}]} for i, text in enumerate(tiny_model_texts)]
    path = arena_workspace.stage_data_dir("sft") / "ui_sft.json"
    return publish_dataset(arena_workspace, "ui_sft", path, rows, "sft", "messages").name


@pytest.mark.e2e
def test_train_sft_from_the_browser_survives_a_reload(chromium: Path, server_url: str, tiny_model_dir: Path,
                                                      sft_dataset: str, tmp_path: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server_url}/ui/")
            page.get_by_role("tab", name="Train", exact=True).click()
            page.get_by_role("tab", name="SFT", exact=True).click()
            page.locator("#sft-model_name textarea").fill(str(tiny_model_dir))
            page.locator("#sft-dataset textarea").fill(sft_dataset)
            page.locator("#overrides-sft textarea").fill("max_steps=3\nlogging_steps=1\nper_device_train_batch_size=2")
            page.locator("#generate-sft").click()
            expect(page.locator("#config-yaml")).to_contain_text("max_steps: 3", timeout=60_000)
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
        finally:
            browser.close()
