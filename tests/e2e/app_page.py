"""Drive the Restoration Lab page in a real browser the way a user does.

Components are found by what the user reads (tab ids, block labels, button text), scoped
to the visible tab, so a layout change inside a tab does not break the tests.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

MODEL_TIMEOUT_MS = 120_000  # a model run on 2 shared CPU cores, queued behind others
UI_TIMEOUT_MS = 30_000  # uploads, page updates


class AppPage:
    """One browser tab on the app; records uncaught JavaScript errors while it lives."""

    def __init__(self, page: Page, url: str, screenshots: Path) -> None:
        self.page = page
        self.url = url
        self.screenshots = screenshots
        self.js_errors: list[str] = []
        page.on("pageerror", lambda error: self.js_errors.append(str(error)))

    def load(self) -> None:
        self.page.goto(self.url)
        expect(self.page.get_by_role("tab").first).to_be_visible(timeout=UI_TIMEOUT_MS)

    def tab_ids(self) -> list[str]:
        tabs = self.page.locator("button[role=tab][data-tab-id]")
        return [tab.get_attribute("data-tab-id") or "" for tab in tabs.all()]

    def open_tab(self, tab_id: str) -> Locator:
        """Select a top-level tab; returns its panel (the first visible one: the outermost)."""
        self.page.locator(f"button[role=tab][data-tab-id='{tab_id}']").click()
        panel = self.page.locator("div[role=tabpanel]:visible").first
        expect(panel.locator("div.block").first).to_be_visible(timeout=UI_TIMEOUT_MS)
        return panel

    def block(self, panel: Locator, label: str, exact: bool = False) -> Locator:
        """The component whose label contains (or, ``exact``, is) ``label``."""
        title = self.page.locator("[data-testid=block-label], [data-testid=block-info]")
        text = re.compile(rf"^\s*{re.escape(label)}\s*$") if exact else label
        return panel.locator("div.block").filter(has=title.filter(has_text=text)).first

    def table(self, panel: Locator, label: str) -> Locator:
        """A ``gr.Dataframe``: an ARIA grid named by its label."""
        return panel.get_by_role("grid", name=label)

    def upload_image(self, panel: Locator, label: str, path: Path) -> Locator:
        """Upload into a ``gr.Image``; returns its block once the preview shows."""
        block = self.block(panel, label)
        block.locator("input[type=file]").set_input_files(path)
        expect(block.locator("img")).to_be_visible(timeout=UI_TIMEOUT_MS)
        return block

    def choose(self, panel: Locator, menu: str, model_id: str) -> None:
        """Pick the dropdown option whose label ends with ``(model_id)``, as our menus do."""
        box = panel.get_by_role("combobox", name=re.compile(f"^{re.escape(menu)}"))
        box.click()
        pattern = re.compile(rf"\({re.escape(model_id)}\)")
        self.page.get_by_role("option", name=pattern).click()
        self.page.keyboard.press("Escape")

    def click(self, panel: Locator, button: str) -> None:
        panel.get_by_role("button", name=button, exact=True).click()

    def error_toast(self) -> Locator:
        return self.page.get_by_test_id("toast-body").filter(has_text="Error")

    def outcome(self, result: Locator, timeout_ms: int = MODEL_TIMEOUT_MS) -> str | None:
        """Wait until ``result`` or an error message shows; returns the error's text or None."""
        expect(result.or_(self.error_toast()).first).to_be_visible(timeout=timeout_ms)
        if result.first.is_visible():
            return None
        return self.error_toast().first.inner_text()

    def wait_for(self, result: Locator, timeout_ms: int = MODEL_TIMEOUT_MS) -> None:
        """Wait until ``result`` shows; fail at once with the message if an error shows."""
        error = self.outcome(result, timeout_ms)
        if error is not None:
            pytest.fail(f"the app reported an error: {error}")

    def download_link(self, block: Locator) -> Locator:
        return block.get_by_test_id("download-link").first

    def fetch_download(self, block: Locator) -> Image.Image:
        """The image behind the block's download link, fetched as the browser would."""
        return Image.open(io.BytesIO(self.download_bytes(block)))

    def download_bytes(self, block: Locator) -> bytes:
        return self._fetch(self.download_link(block).get_attribute("href"))

    def fetch_shown(self, image: Locator) -> Image.Image:
        """The file an <img> shows."""
        return Image.open(io.BytesIO(self._fetch(image.get_attribute("src"))))

    def _fetch(self, url: str | None) -> bytes:
        assert url, "no address to fetch from"
        response = self.page.request.get(url)
        assert response.ok, f"{url}: HTTP {response.status}"
        return response.body()

    def expect_loaded(self, image: Locator) -> None:
        """The <img> has a source and the browser decoded it (not a broken image)."""
        expect(image).to_have_attribute("src", re.compile(r".+"))
        self.page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0",
            arg=image.element_handle(),
            timeout=UI_TIMEOUT_MS,
        )

    def finish(self, name: str) -> Path:
        """Screenshot the whole page as ``<name>.png``; the page must have had no JS errors."""
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        assert not self.js_errors, f"uncaught JavaScript errors: {self.js_errors}"
        return path
