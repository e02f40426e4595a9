"""Issue 40 in a real browser (Debian Chromium via Playwright), on the shipped sample digits: 'Let Transfer Lab
choose' with a one-minute budget (120 digits at 64 px), the live table of tries and their curves on the Train step, then Results'
search block: the winner, the margin sentence, the tries; axe finds no violation. Screenshots under the test's
tmp dir.

Run:  .venv/bin/python -m pytest tests/browser/test_browser_auto_search.py -q
"""
from __future__ import annotations

import pytest

from tests.helpers import a11y_helpers as ax
from tests.helpers import browser_helpers as bh

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_TIMEOUT_S = 360   # a one-minute search, the winner's refit and the worker's start, on a busy machine


def test_auto_strategy_shows_its_tries_and_why_the_winner_was_kept(page, tmp_path):
    def shot(name: str) -> None:
        page.screenshot(path=str(tmp_path / f"auto-search-{name}.png"), full_page=True)

    bh.ensure_visible(page, "#use-sample-image")
    page.locator("#use-sample-image").first.click()
    bh.wait_for_regex(page, "#data-summary", r"300\s+(examples|images)", timeout_s=90)

    bh.ensure_visible(page, "#strategy-choice")
    bh.set_number(page, "budget-minutes", 1)
    auto = page.locator("#strategy-choice input[value='auto']")
    bh.wait_until(lambda: "within 1 minute" in bh.text_of(page, "#strategy-choice"), 15,
                  "the auto choice's label names the budget", page=page)
    auto.check()
    bh.open_accordions(page)
    bh.set_number(page, "image-size", 64)
    bh.set_number(page, "max-examples", 120)
    info = bh.wait_for_text(page, "#strategy-info", "at most about", timeout_s=30)
    assert "Tries" in info and "LoRA" in info, info
    shot("strategy")

    bh.ensure_visible(page, "#start-btn")
    page.locator("#start-btn").first.click()
    table = bh.wait_for_text(page, "#trial-table", "the probe", timeout_s=120)
    assert "Validation accuracy" in table, table
    shot("train-live")
    text = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=TRAIN_TIMEOUT_S)
    assert "finished" in text.lower(), f"the run did not finish: {text!r}"
    table = bh.text_of(page, "#trial-table")
    assert "finished" in table and "%" in table, table
    # each fine-tuning try that ran an epoch (finished, or pruned after one) is a faint line over the table
    # (a try stopped by the budget has one if it got past its first epoch)
    rows = page.locator("#trial-table tbody tr").all_text_contents()
    fine_tuning = [r for r in rows if r.split("(")[0].strip(" 0123456789").startswith(("partial", "full", "LoRA"))
                   and "skipped" not in r]
    with_epochs = [r for r in fine_tuning if "finished" in r or "pruned" in r]
    curves = page.locator("#trial-table svg[role=img] .tl-try-curve").count()
    assert len(with_epochs) <= curves <= len(fine_tuning), (rows, curves)
    page.locator("#trial-table").scroll_into_view_if_needed()
    shot("train-done")
    bh.wait_until(lambda: bh.is_shown(page, "#to-results"), 15, "'See the results'", page=page)
    page.locator("#to-results").click()

    block = bh.wait_for_text(page, "#search-summary", "Chosen by the search", timeout_s=60)
    assert "validation examples" in block and "(kept)" in block and "test examples" in block, block
    assert any(words in block for words in ("nothing was compared", "indistinguishable", "more than noise")), block
    bh.assert_no_crash_signs(page)
    page.locator("#search-summary").scroll_into_view_if_needed()
    shot("results")
    ax.assert_accessible(page, "Results of a 'Let Transfer Lab choose' run")
