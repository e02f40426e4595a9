"""The study report's HTML in a real Chromium: axe-core finds no violation."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.report_checks import ARTIFACTS
from tests.helpers.report_fixtures import report_runs

from tl_ui.study_report import write_report

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return report_runs(tmp_path_factory.mktemp("report-runs"))


# -- the numbers ---------------------------------------------------------------------------------


# -- the structure --------------------------------------------------------------------------------


# -- files: service, CLI, PDF ----------------------------------------------------------------------


@pytest.mark.browser
def test_the_html_report_has_no_axe_violations(runs, tmp_path):
    from tests.helpers import a11y_helpers as a11y
    from tests.helpers import browser_helpers as bh

    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(bh.CHROMIUM):
        pytest.skip(f"{bh.CHROMIUM} not found")
    with sync_api.sync_playwright() as pw:
        browser = bh.launch_chromium(pw)
        try:
            page = bh.new_page(browser)
            for which in ("binary", "multilabel"):
                out = write_report(runs[which].path, tmp_path / f"{which}.html")
                page.goto(out.as_uri())
                a11y.assert_accessible(page, f"study-report-{which}")
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"screen-fixture-{which}.png"), full_page=True)
        finally:
            browser.close()
