"""The browser tests' shared fixtures: one Chromium per test module (Debian's, driven by Playwright), the
app's URL, and a fresh page on it. Every test here is marked `browser`, `integration` and `slow`, with a
longer time limit (a whole training run waits in some of them)."""
from __future__ import annotations

import os

import pytest

from tests.helpers import browser_helpers as bh


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[test]')"
    if not (os.path.exists(bh.CHROMIUM) and os.access(bh.CHROMIUM, os.X_OK)):
        return f"{bh.CHROMIUM} not found (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = bh.launch_chromium(pw)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def app_url(request, tmp_path_factory):
    """Base URL of the app: TL_BROWSER_APP_URL (an already running app), else the shared `launched_app`
    (tests/conftest.py)."""
    if os.environ.get("TL_BROWSER_APP_URL"):
        yield os.environ["TL_BROWSER_APP_URL"].rstrip("/") + "/"
        return
    yield request.getfixturevalue("launched_app").rstrip("/") + "/"


def _open_page(browser, app_url):
    pg = bh.new_page(browser)
    pg.goto(app_url)
    pg.wait_for_selector(".gradio-container", state="attached", timeout=60_000)
    pg.wait_for_selector("[role=tab], #data-upload", state="attached", timeout=60_000)
    bh.render_all_tabs(pg)  # Gradio 6 renders a tab's children on first visit only
    pg.wait_for_selector("#data-upload", state="attached", timeout=10_000)
    return pg


@pytest.fixture
def page(browser, app_url):
    """A new page (its own session) on the app, every tab rendered."""
    pg = _open_page(browser, app_url)
    yield pg
    pg.context.close()


@pytest.fixture(scope="module")
def upload_page(browser, app_url):
    """One page shared by a file's tests that each upload a file and read what the Data step says of it: each
    upload replaces the last, as a user's next try does (opening a page costs about 4 s of two busy cores)."""
    pg = _open_page(browser, app_url)
    yield pg
    pg.context.close()
