"""Browser tests: real Chromium (Debian's package) driven by Playwright.

.ci/run installs chromium when it is missing; elsewhere these tests are skipped,
saying why, when no Chromium is on the machine.
"""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
# The machine has no internet: keep Chromium from trying to reach Google.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(monkeypatch):
    """A fresh browser page; Playwright (and its event loop) ends with the test."""
    if not CHROMIUM:
        pytest.skip("needs Chromium: apt-get install chromium (as .ci/run does)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, so Django would
    # refuse the test body's (synchronous) database calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(
            locale="en-US", viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()
