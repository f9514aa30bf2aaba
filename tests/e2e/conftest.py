"""Browser fixtures: Debian's Chromium driven by Playwright against the session's live app.

Playwright's own browser downloads are not used (nor reachable here): the system
Chromium is launched by path. Without it the browser tests skip, except in CI
(``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ROOT
from tests.e2e.app_page import UI_TIMEOUT_MS, AppPage

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}


def chromium_path() -> str | None:
    candidate = os.environ.get("RESTORATION_CHROMIUM", "/usr/bin/chromium")
    return candidate if Path(candidate).exists() else shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in SCREENSHOTS.glob("failed-*.png"):  # from an earlier run
        stale.unlink()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture()
def app(browser: Browser, live_server: str, request: pytest.FixtureRequest) -> Iterator[AppPage]:
    """A fresh page on the live app (no downloads); a failed test leaves a screenshot."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=False)
    page: Page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    driver = AppPage(page, live_server, SCREENSHOTS)
    driver.load()
    yield driver
    if request.node.stash.get(_FAILED, False):
        name = "failed-" + "".join(c if c.isalnum() else "_" for c in request.node.name)
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    context.close()
