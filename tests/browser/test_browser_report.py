"""The study report from the Results step in a real browser (Debian Chromium via Playwright), issue 35.

Uploads 80 of the sample movie reviews, trains a linear probe on MiniLM-L6, opens Results, presses
"Make the study report" and downloads both formats: the HTML page (its numbers read back from the
run's metrics.json) and the PDF (its text extracted). axe-core checks the Results step with the
report's controls. Screenshots: test-artifacts/browser/report-*.png.

Run:  .venv/bin/python -m pytest tests/browser/test_browser_report.py -q
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tests.helpers import a11y_helpers as a11y
from tests.helpers import browser_helpers as bh
from tests.helpers.report_checks import check_report_numbers, checklist_items

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_TIMEOUT_S = 150


def _shot(page, name: str) -> None:
    bh.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(bh.ARTIFACTS / f"report-{name}.png"), full_page=True)


def _reviews(path: Path, n: int = 80) -> Path:
    from tl_ui.data import sample_dataset_path

    with open(sample_dataset_path("text"), encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fresh = [r for r in rows if r["label"] == "fresh"][: n // 2]
    rotten = [r for r in rows if r["label"] == "rotten"][: n // 2]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows([r["text"], r["label"]] for pair in zip(fresh, rotten) for r in pair)
    return path


def _download(page, selector: str, folder: Path) -> Path:
    bh.ensure_visible(page, selector)
    with page.expect_download(timeout=60_000) as info:
        page.locator(selector).first.click()
    saved = folder / (info.value.suggested_filename or Path(selector).name)
    info.value.save_as(str(saved))
    return saved


def test_results_step_downloads_the_study_report_as_html_and_pdf(page, tmp_path, launched_server):
    data = _reviews(tmp_path / "reviews.csv")
    bh.upload(page, "data-upload", data)
    bh.wait_for_regex(page, "#data-summary", r"\b80 texts\b", timeout_s=90)
    bh.ensure_visible(page, "#strategy-choice")
    page.locator("#strategy-choice input[value='linear_probe']").check()
    bh.wait_for_regex(page, "#strategy-info", r"\d", timeout_s=30)
    bh.ensure_visible(page, "#start-btn")
    page.locator("#start-btn").first.click()
    status = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=TRAIN_TIMEOUT_S)
    assert "finished" in status.lower(), f"the run did not finish: {status!r}"

    bh.wait_until(lambda: bh.is_shown(page, "#to-results"), 15, "'See the results'", page=page)
    page.locator("#to-results").click()
    bh.wait_for_text(page, "#results-summary", "interval", timeout_s=60)
    assert not bh.button_enabled(page, "#download-report"), "the report is offered before it is made"

    # Make the report: both downloads become available.
    bh.ensure_visible(page, "#report-btn")
    page.locator("#report-btn").first.click()
    note = bh.wait_for_text(page, "#report-note", ["ready", "Problem"], timeout_s=90)
    assert "HTML" in note and "PDF" in note, note
    bh.wait_until(lambda: bh.button_enabled(page, "#download-report-pdf"), 15, "the PDF download", page=page)
    bh.assert_no_crash_signs(page)
    page.locator("#report-note").scroll_into_view_if_needed()
    _shot(page, "results")
    a11y.assert_accessible(page, "results-report")

    # The HTML: every number read back from the run's own files.
    html_file = _download(page, "#download-report", tmp_path)
    assert html_file.suffix == ".html", html_file.name
    report = html_file.read_text(encoding="utf-8")
    run_id = re.search(r"report-(.+)\.html$", html_file.name).group(1)
    run_dirs = {p.name: p for p in Path(launched_server.lab.workspace.root).rglob(run_id) if p.is_dir()}
    assert run_id in run_dirs, f"the run folder of {run_id} was not found"
    check_report_numbers(report, {run_id: run_dirs[run_id]})
    assert len(checklist_items(report)) == 52

    # The PDF: it opens and its text is there.
    pdf_file = _download(page, "#download-report-pdf", tmp_path)
    assert pdf_file.read_bytes()[:5] == b"%PDF-"
    from pypdf import PdfReader

    text = " ".join(" ".join(p.extract_text() for p in PdfReader(str(pdf_file)).pages).split())
    assert "TRIPOD+AI checklist" in text and "Page 1 of" in text
    # the page it came from: the report opened in the browser is readable too
    page.goto(html_file.as_uri())
    _shot(page, "html")
