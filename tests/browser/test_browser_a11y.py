"""A keyboard-only user on a tablet (768 px wide): loads the sample images, picks a strategy, starts
a run and stops it, starts a small one, reads its results (the plots' text alternatives included)
and downloads the model, without a mouse. Every control is reached with Tab / Shift+Tab (Space
picks an option, Enter presses a button) and shows a focus ring when it has the focus; the
tables scroll instead of breaking words; axe-core finds no WCAG 2.1 A/AA violation in the states
this walk adds (a stopped run, opened text alternatives, the narrow layout). A 768 px screenshot of each step is saved
(test-artifacts/browser/4x-tablet-*.png: look at them).

Run:  .venv/bin/python -m pytest tests/browser/test_browser_a11y.py -q
"""
from __future__ import annotations

import re
import zipfile

import pytest

from tests.helpers import a11y_helpers as a11y
from tests.helpers import browser_helpers as bh

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABLET = {"width": 768, "height": 1024}
TRAIN_TIMEOUT_S = 240
TABLES = ("#model-shelf", "#metrics-table", "#per-class-table", "#runs-table")


@pytest.fixture
def tablet(browser, app_url):  # noqa: F811
    context = bh.new_context(browser, TABLET)
    page = context.new_page()
    page.goto(app_url)
    page.wait_for_selector("[role=tab]", state="attached", timeout=60_000)
    page.wait_for_selector("#model-shelf", state="visible", timeout=60_000)
    yield page
    context.close()


def _status(page) -> str:
    return bh.text_of(page, "#train-status")


def _type_number(page, selector: str, value: int) -> None:
    """Tab to a number field, replace its value by typing, and leave it (Gradio commits on blur)."""
    a11y.tab_to(page, f"{selector} input")
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Tab")
    page.wait_for_timeout(400)
    assert page.locator(f"{selector} input").first.input_value() == str(value), selector


def _no_broken_words(page, selectors) -> None:
    for selector in selectors:
        if bh.is_shown(page, selector):
            broken = a11y.words_broken_mid_word(page, selector)
            assert not broken, f"{selector} breaks words mid-word at 768 px: {broken[:10]}"


def test_keyboard_only_run_on_a_tablet(tablet, tmp_path):
    page = tablet

    # 1 · Model: the shelf scrolls sideways instead of breaking its words
    _no_broken_words(page, ["#model-shelf"])
    assert bh.text_of(page, "#model-info").startswith("Selected: EfficientNet"), bh.text_of(page, "#model-info")
    bh.screenshot(page, 40, "tablet-1-model")

    # 2 · Data: the sample images, from the keyboard (the row of steps comes first in the tab order)
    assert a11y.tab_to(page, "#tab-data-button") <= 3
    page.keyboard.press("Enter")
    a11y.tab_to(page, "#use-sample-image")
    page.keyboard.press("Enter")
    bh.wait_for_regex(page, "#data-summary", r"300\s+images", timeout_s=90)
    bh.wait_until(lambda: bh.plot_has_data(page, "class-counts"), 30, "#class-counts to draw", page=page)
    bh.wait_images_loaded(page, "#data-gallery")
    bh.screenshot(page, 41, "tablet-2-data")
    a11y.tab_to(page, "#data-next")
    page.keyboard.press("Enter")

    # 3 · Strategy: full fine-tuning, small images, few examples (each option of Gradio's radio group is a tab stop
    # of its own: Tab to it, Space picks it)
    page.wait_for_selector("#strategy-choice", state="visible")
    a11y.tab_to(page, "#strategy-choice input[value='full']")
    page.keyboard.press("Space")
    bh.wait_until(lambda: page.locator("#strategy-choice input[value='full']").is_checked(), 5,
                  "full fine-tuning to be picked with the keyboard", page=page)
    a11y.tab_to(page, "#advanced button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#image-size input", state="visible")
    _type_number(page, "#image-size", 64)
    _type_number(page, "#max-examples", 60)   # a quick run: 60 of the 300 digits
    bh.wait_for_regex(page, "#strategy-info", r"Rough time", timeout_s=30)
    bh.screenshot(page, 42, "tablet-3-strategy")
    a11y.tab_to(page, "#strategy-next")
    page.keyboard.press("Enter")

    # 4 · Train: start, then stop once it trains
    page.wait_for_selector("#start-btn", state="visible")
    a11y.tab_to(page, "#start-btn")
    page.keyboard.press("Enter")
    bh.wait_until(lambda: re.search(r"Training:|Preparing", _status(page)), TRAIN_TIMEOUT_S,
                  "the run to start", page=page, describe=lambda: f"#train-status shows {_status(page)!r}")
    bh.wait_until(lambda: bh.button_enabled(page, "#stop-btn"), 30, "#stop-btn to be enabled", page=page)
    a11y.tab_to(page, "#stop-btn")
    page.keyboard.press("Enter")
    bh.wait_for_text(page, "#train-status", ["Stopped"], timeout_s=60)
    bh.wait_for_text(page, "#train-announce", ["stopped", "Stopping"], timeout_s=15)
    a11y.assert_accessible(page, "tablet-train-stopped")

    # back to 3 · Strategy (Shift+Tab up to the row of steps): the linear probe, 2 epochs
    a11y.open_step(page, "strategy")
    a11y.tab_to(page, "#strategy-choice input[value='linear_probe']")
    page.keyboard.press("Space")
    bh.wait_until(lambda: page.locator("#strategy-choice input[value='linear_probe']").is_checked(), 5,
                  "the linear probe to be picked with the keyboard", page=page)
    page.wait_for_timeout(600)   # the strategy's default epochs arrive
    _type_number(page, "#epochs", 2)
    a11y.tab_to(page, "#strategy-next")
    page.keyboard.press("Enter")
    page.wait_for_selector("#start-btn", state="visible")
    a11y.tab_to(page, "#start-btn")
    page.keyboard.press("Enter")
    bh.wait_until(lambda: "finished" in _status(page).lower() or bh.plot_has_data(page, "loss-plot"),
                  TRAIN_TIMEOUT_S, "the second run to train", page=page,
                  describe=lambda: f"#train-status shows {_status(page)!r}")
    bh.screenshot(page, 43, "tablet-4-train")
    text = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=TRAIN_TIMEOUT_S)
    assert "finished" in text.lower(), text
    # what a screen reader hears, and the curves in words
    bh.wait_for_text(page, "#train-announce", "Training finished", timeout_s=15)
    assert page.locator("#train-announce").get_attribute("aria-live") == "polite"
    curves_text = bh.text_of(page, "#curves-text")
    assert re.search(r"after (epoch 2 of 2|iteration \d+), validation accuracy \d", curves_text), curves_text

    # 5 · Results: through "See the results", read them, open the reliability table, download the model
    bh.wait_until(lambda: bh.is_shown(page, "#to-results"), 15, "'See the results'", page=page)
    a11y.tab_to(page, "#to-results")
    page.keyboard.press("Enter")
    summary = bh.wait_for_text(page, "#results-summary", "95% interval", timeout_s=30)
    assert re.search(r"test accuracy: \d+% \(95% interval", summary, re.I), summary
    assert re.search(r"right on \d+ of \d+ test examples", bh.text_of(page, "#confusion-plot"), re.I)
    a11y.tab_to(page, "#reliability-text summary")
    page.keyboard.press("Enter")
    assert page.locator("#reliability-text table").is_visible()
    assert page.locator("#reliability-text td").count() >= 3
    _no_broken_words(page, TABLES)
    a11y.assert_accessible(page, "tablet-results-tables-open")
    bh.screenshot(page, 44, "tablet-5-results")
    a11y.tab_to(page, "#download-model")
    with page.expect_download(timeout=60_000) as info:
        page.keyboard.press("Enter")
    saved = tmp_path / (info.value.suggested_filename or "model.zip")
    info.value.save_as(str(saved))
    assert zipfile.is_zipfile(saved), saved.name
