"""What the browser tests share: Debian's Chromium driven by Playwright, the gateway with the UI mounted served by
uvicorn on 127.0.0.1 and a free port in a thread, sign-in through Gradio's login form, and screenshots (to the
test's tmp dir, and to $LLMOPS_TEST_ARTIFACTS when set)."""

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from llmops.serve.gateway import create_app
from llmops.serve.server import free_port
from llmops.ui.app import mount_ui
from llmops.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}


@contextmanager
def serving(workspace: Workspace) -> Iterator[str]:
    """The gateway of `workspace` with the UI mounted, on 127.0.0.1 and a free port; yields its URL."""
    port = free_port()
    app = mount_ui(create_app(workspace), workspace)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def browser_page() -> Iterator[Page]:
    """A page of headless Chromium (.ci/run installs Debian's before `make test`)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install chromium`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def sign_in(page: Page, server_url: str, token: str, folder: Path) -> None:
    """Open the UI and sign in through Gradio's login form as `admin` with the workspace's admin token."""
    page.goto(f"{server_url}/ui/")
    for password in ("not the token", token):  # the form is emptied after a refusal
        page.get_by_label("username").fill("admin")
        page.get_by_label("password").fill(password)
        page.get_by_role("button", name="Login").click()
        if password != token:
            expect(page.get_by_text("Incorrect Credentials")).to_be_visible(timeout=WAIT_MS)
            shot(page, folder, "sign_in_refused")
    expect(page.locator("#signed-in")).to_contain_text("signed in as admin", timeout=WAIT_MS)


def shot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("LLMOPS_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def pick(page: Page, dropdown: str, option: str) -> None:
    """Choose `option` (its label) in the Gradio dropdown `dropdown` (an elem_id). A tab's select event may
    re-render the dropdown just after it opened (closing its list), so the list is opened again until it shows."""
    choice = page.locator(f"#{dropdown}").get_by_role("option", name=option, exact=True)
    for _ in range(5):
        page.locator(f"#{dropdown} input").click()
        try:
            choice.click(timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    expect(page.locator(f"#{dropdown} input")).to_have_value(option)
