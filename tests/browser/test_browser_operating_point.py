"""Issue 33 in a real browser (Debian Chromium via Playwright), on the shipped sample reviews (fresh / rotten)
and on a two-class image set (the sample digits' 3s and 8s, uploaded as a zip): the positive class and a
sensitivity target picked in step 3, a linear probe trained, then Results' Operating
point panel: the saved point, the ROC / PR curves (SVG with their text alternatives), the threshold slider's
live readout, the decision curve; axe finds no violation. Screenshots under the test's tmp dir.

Run:  .venv/bin/python -m pytest tests/browser/test_browser_operating_point.py -q
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from tests.helpers import a11y_helpers as ax
from tests.helpers import browser_helpers as bh

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_TIMEOUT_S = 180


def _two_class_digits(folder: Path) -> Path:
    """The sample digits' 3s and 8s (30 each) as a zip of class folders, as a user would upload them."""
    from tl_ui.data import sample_dataset_path

    out = folder / "digits-3-and-8.zip"
    with zipfile.ZipFile(sample_dataset_path("image")) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            parts = name.split("/")
            if len(parts) == 3 and parts[1] in ("3", "8") and parts[2]:
                target.writestr(name, source.read(name))
    return out


@pytest.mark.parametrize("data, positive", [("reviews", "rotten"), ("digits 3 and 8", "8")])
def test_operating_point_from_strategy_to_slider(page, tmp_path, data, positive):
    def shot(name: str) -> None:
        page.screenshot(path=str(tmp_path / f"operating-point-{name}.png"), full_page=True)

    if data == "reviews":
        bh.ensure_visible(page, "#use-sample-text")
        page.locator("#use-sample-text").first.click()
        bh.wait_for_text(page, "#data-summary", "fresh", timeout_s=90)
    else:
        bh.upload(page, "data-upload", _two_class_digits(tmp_path))
        bh.wait_for_regex(page, "#data-summary", r"60\s+(examples|images)", timeout_s=90)

    # Strategy: the linear probe; the condition to find and a sensitivity target.
    bh.ensure_visible(page, "#strategy-choice")
    page.locator("#strategy-choice input[value='linear_probe']").check()
    bh.ensure_visible(page, "#operating-point-box")
    bh.open_accordions(page)
    bh.choose(page, "positive-class", positive)
    bh.choose(page, "operating-point-rule", "sensitivity:0.9")
    bh.wait_for_regex(page, "#strategy-info", r"\d", timeout_s=30)
    shot("strategy")

    bh.ensure_visible(page, "#start-btn")
    page.locator("#start-btn").first.click()
    text = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=TRAIN_TIMEOUT_S)
    assert "finished" in text.lower(), f"the run did not finish: {text!r}"
    bh.wait_until(lambda: bh.is_shown(page, "#to-results"), 15, "'See the results'", page=page)
    page.locator("#to-results").click()

    intro = bh.wait_for_text(page, "#op-intro", f"Saved operating point for {positive}", timeout_s=60)
    assert "validation examples" in intro and re.search(r"sensitivity \d", intro), intro
    curves = bh.text_of(page, "#op-curves")
    assert "AUROC" in curves and f"{positive} against the rest" in curves, curves
    assert page.locator("#op-curves svg[role='img']").count() == 2
    assert page.locator("#op-decision svg[role='img']").count() == 1
    page.locator("#op-panel").scroll_into_view_if_needed()
    shot("panel")

    # The slider: the readout follows it, and says why a threshold picked here is optimistic.
    bh.set_number(page, "op-slider", 0.3)
    readout = bh.wait_for_text(page, "#op-readout", "At threshold 0.300", timeout_s=30)
    assert "optimistic" in readout and re.search(rf"finds \d+ of \d+ (class )?{positive} examples", readout), readout
    assert "flagged" in readout and "not flagged" in readout
    bh.assert_no_crash_signs(page)
    page.locator("#op-readout").scroll_into_view_if_needed()
    shot("slider")
    ax.assert_accessible(page, f"Results with the Operating point panel ({data})")
