"""Browser tests of the embedded UI: headless Debian Chromium (Playwright) on the sandbox's portal page.

The portal page frames our real app (POST /app over real HTTP) and plays the parent side of the
b24jssdk postMessage protocol, so every test runs the real @bitrix24/b24jssdk bundle against it.
Screenshots go to tests/artifacts/ (git-ignored); set B24_UPDATE_SCREENSHOT=1 to also refresh the
committed docs/screenshot-*.png that the README shows.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "static" / "vendor" / "b24jssdk.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
TIMEOUT_MS = 15000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason="Debian's Chromium is not installed at /usr/bin/chromium"))
            elif not BUNDLE.exists():
                item.add_marker(pytest.mark.skip(reason="static/vendor/b24jssdk.min.js is missing (run `make setup`)"))


@dataclass
class Tab:
    """One browser page on the sandbox portal, with what it logged."""

    page: Any
    console: list[str] = field(default_factory=list)
    console_errors: list[tuple[str, str]] = field(default_factory=list)  # (text, url of the script or resource)
    dialogs: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def app_frame(self, app_url: str) -> Any:
        """The app's Frame (for evaluate); the locator API goes through `frame_locator`."""
        self.page.locator("#b24-app-frame").wait_for()
        for _ in range(100):
            frame = self.page.frame(url=lambda url: url.startswith(app_url))
            if frame is not None:
                return frame
            self.page.wait_for_timeout(50)
        raise AssertionError("the app frame did not load")

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line or "Refused to" in line]


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    opened = Tab(page)
    def on_console(msg: Any) -> None:
        opened.console.append(f"{msg.type}: {msg.text}")
        if msg.type == "error":
            opened.console_errors.append((msg.text, (msg.location or {}).get("url", "")))

    page.on("console", on_console)
    page.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()


def screenshot(page: Any, name: str, *, publish: str | None = None) -> Path:
    """Save tests/artifacts/`name`; with B24_UPDATE_SCREENSHOT=1 also docs/`publish` (the README's pictures)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    if publish and os.environ.get("B24_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(path, ROOT / "docs" / publish)
    return path
