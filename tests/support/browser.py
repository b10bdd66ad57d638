"""Headless Chromium for the dashboard tests: Debian's chromium driven by Playwright.

Playwright's own browser download does not work here; ``make install`` installs Debian's
``chromium``. A missing browser or package fails the test with what to do (never a skip).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_PREFIXES = ("http://127.0.0.1", "data:")


def sync_playwright_or_fail() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `make install`")
    return sync_playwright()


def launch(playwright: Any) -> Any:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make install` (it installs Debian's chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def watched_page(browser: Any, problems: list[str]) -> Any:
    """A 1920×1080 page that records page errors, console errors and any non-local request."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on(
        "request",
        lambda req: (
            None if req.url.startswith(LOCAL_PREFIXES) else problems.append(f"external request: {req.url}")
        ),
    )
    return page
