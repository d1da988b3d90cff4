"""Headless Chromium for page tests: Debian's browser, driven by Playwright.

Playwright's own browser downloads are not used (and cannot be fetched here); it
drives ``/usr/bin/chromium``. Screenshots go to ``var/test-artifacts/`` so that a
failed run can be looked at.
"""

import os
import threading
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts"
# Chromium must not try to reach the internet on start (there is none): these
# flags switch off its background services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """Yield a fresh Chromium page and the list of every URL it requested.

    Make database rows in fixtures listed *before* this one: an ORM call made
    while Playwright's loop runs opens a connection in its context that outlives
    the test and keeps the test database from being dropped.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # test makes around it are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        yield page, requested
        browser.close()


def outside_the_browser(function):
    """Run ``function`` (ORM calls, the job worker) in a thread of its own.

    Playwright's loop owns the test's thread while a page is open; database work
    done there opens connections that outlive the test. A thread of its own gets
    its own connections, closed when it is done.
    """
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        finally:
            connections.close_all()

    worker = threading.Thread(target=target)
    worker.start()
    worker.join(timeout=300)
    assert not worker.is_alive(), "background work did not finish"
    return outcome["value"]


def log_in(page, live_server, username: str, password: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("section.login button[type=submit]")
    page.wait_for_load_state("networkidle")
