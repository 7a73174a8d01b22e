"""Real Chromium (Debian's), driven by Playwright, against the live test server."""

import os
from pathlib import Path

import pytest
from django.test.testcases import _MediaFilesHandler
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("STUDIO_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "var" / "screenshots"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def studio_serves_its_own_media(monkeypatch):
    """Django's test server answers /media/ itself, from MEDIA_ROOT, without byte ranges and without asking who
    is signed in. Hand /media/ to the studio's own view, as in production: it checks membership and answers
    Range requests, without which a browser cannot seek in a video."""
    monkeypatch.setattr(_MediaFilesHandler, "_should_handle", lambda handler, path: False)


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `make test` installs it (apt-get install chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class ConsoleErrors(list):
    def assert_none(self):
        assert not self, f"browser console errors: {list(self)}"


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.console_errors = ConsoleErrors()
    page.on("console", lambda message: page.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, name): saves var/screenshots/<name>.png for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name, full_page=True):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def sign_in(page, live_server, username, password):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
