"""Headless Chromium for what a person sees, driven by Playwright (Debian's `chromium` package;
Playwright's own browser downloads are not used)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STANDARD_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome",
                  "/snap/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path() -> str | None:
    """$CHROMIUM_PATH, else a standard location, else the PATH; None when there is none."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).exists() else None
    found = next((path for path in STANDARD_PATHS if Path(path).exists()), None)
    return found or shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def launch(*extra_flags: str) -> Iterator:
    """A Playwright browser; closed (and Playwright stopped) on exit."""
    from playwright.sync_api import sync_playwright

    from tests.support import tiers

    tiers.require_slow("launches a browser")
    path = chromium_path()
    if path is None:
        raise RuntimeError("Chromium not found: apt-get install -y chromium, or set CHROMIUM_PATH")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=[*FLAGS, *extra_flags])
        try:
            yield browser
        finally:
            browser.close()


def open_tab(chromium, url: str, tab: str, *, height: int = 1200):
    """A new page on the playground at `url`, with the tab named `tab` open."""
    page = chromium.new_page(viewport={"width": 1280, "height": height})
    page.goto(url + "/", wait_until="load")
    page.get_by_role("tab", name=tab).click(timeout=60_000)
    return page


def arena_final_answer(page):
    """The Arena's final-answer heading: matched by role, since a model's own answer may say "final answer"."""
    return page.locator("#arena-final").get_by_role("heading", name=re.compile(r"^Final answer —"))
