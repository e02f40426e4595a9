"""A new user's walk-through of Transfer Lab in a real browser (Debian Chromium via Playwright).

Opens the page, loads the sample digits, picks EfficientNet-Lite0 + linear probe, trains, watches
the curves, reads the results (every number with its interval and plain sentence, the reliability
diagram, prediction sets), tries a prediction, downloads the model, stops a second run mid-way and
trains once more with the from-scratch comparison, then compares the runs; then feeds bad uploads
and checks each error reads as plain words in #data-error. Every step saves a screenshot under
test-artifacts/browser/ (look at them).

Run:  .venv/bin/python -m pytest tests/browser/test_browser.py -q
"""
from __future__ import annotations

import os
import re
import shutil
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.helpers import a11y_helpers as a11y
from tests.helpers import browser_helpers as bh

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# CPU training on 2 cores: generous, but every wait polls and returns as soon as the page is ready.
TRAIN_TIMEOUT_S = 240
STOP_TIMEOUT_S = 60


def _status(page) -> str:
    return bh.text_of(page, "#train-status")


def _progress_seen(text: str) -> bool:
    """The status shows a run under way: 'Epoch 1/20', 'step 3/40', a percentage, 'Training'."""
    return bool(re.search(r"(epoch|step)\s*\d+\s*(/|of)\s*\d+|\d+\s*%|training|embedding|extracting", text, re.I))


def _click(page, selector: str) -> None:
    bh.ensure_visible(page, selector)
    page.locator(selector).first.click()


def _start_run(page, strategy: str, epochs: int) -> None:
    bh.choose(page, "model-choice", "efficientnet_lite0")
    bh.choose(page, "strategy-choice", strategy)
    assert bh.set_number(page, "epochs", epochs), "no #epochs field to set"
    _click(page, "#start-btn")


def _wait_finished(page, timeout_s: float = TRAIN_TIMEOUT_S) -> str:
    text = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=timeout_s)
    assert "finished" in text.lower(), f"the run did not finish: #train-status shows {text!r}"
    return text


def _wait_plot_while_training(page, elem_id: str) -> None:
    """Wait for visible rows in a live plot; give up 8 s after the run has ended without them."""
    ended_at = []

    def check():
        if bh.plot_has_data(page, elem_id):
            return True
        if re.search(r"finished|stopped|failed", _status(page), re.I):
            ended_at.append(time.monotonic())
            if time.monotonic() - ended_at[0] > 8:
                raise AssertionError(
                    f"the run ended ({_status(page)!r}) but #{elem_id} shows no visible curve; "
                    f"marks: {bh.plot_marks(page, elem_id)}")
        return False

    bh.wait_until(check, TRAIN_TIMEOUT_S, f"#{elem_id} to draw its first rows", page=page,
                  describe=lambda: f"#train-status shows {_status(page)!r}")


def _plot_rendered(page, elem_id: str) -> bool:
    """A vega plot with marks, or an image/plotly/canvas plot (a heat map may be any of them)."""
    if bh.plot_has_data(page, elem_id):
        return True
    return bool(page.evaluate(
        """(id) => {
            const r = document.getElementById(id);
            if (!r) return false;
            const img = r.querySelector('img');
            if (img && img.getAttribute('src') && img.naturalWidth > 0) return true;
            if (r.querySelector('.js-plotly-plot .main-svg, canvas')) return true;
            if (r.querySelectorAll('table td').length >= 4) return true;   // an HTML heat-map table
            return false;
        }""",
        elem_id,
    ))


def _check_evidence(page) -> None:
    """The Results headline: the cross-validated estimate first (few test examples), the test accuracy,
    each with its 95% interval; the plain sentence; the reliability diagram and prediction sets."""
    bh.ensure_visible(page, "#results-summary")
    head = bh.wait_for_text(page, "#results-summary", "95% interval", timeout_s=30)
    assert re.search(r"Cross-validated accuracy: \d+% \(95% interval \d+%–\d+%\)", head), head
    assert re.search(r"test accuracy: \d+% \(95% interval \d+%–\d+%\)", head), head
    assert head.index("Cross-validated") < head.index("test accuracy"), head
    assert re.search(r"Right on (\d+ of \d+ test examples\. .*probably between \d+% and \d+%|all \d+ test examples; "
                     r"with \d+ examples that still allows a true accuracy as low as \d+%)", head), head
    assert "took no part in training" in head, head                       # where the numbers come from
    assert re.search(r"Macro-F1.*\d+% \(95% interval \d+%–\d+%\)", head), head
    per_class = bh.text_of(page, "#per-class-table")
    assert re.search(r"\d+% \(\d+%–\d+%\)", per_class), f"#per-class-table has no intervals: {per_class!r}"
    bh.ensure_visible(page, "#reliability-plot")
    bh.wait_until(lambda: bh.plot_has_data(page, "reliability-plot"), 30, "#reliability-plot to draw", page=page)
    assert set(bh.series_colours(page, "reliability-plot")) == {
        "after calibration", "before calibration", "perfectly calibrated"}, bh.series_colours(page, "reliability-plot")
    assert re.search(r"before calibration and [\d.]+ after", bh.text_of(page, "#calibration-summary"))
    assert re.search(r"at the \d+% level the set held the right class for \d+% of \d+ test examples",
                     bh.text_of(page, "#conformal-summary")), bh.text_of(page, "#conformal-summary")
    rows = bh.table_rows(page, "runs-table")
    assert len(rows) == 1 and re.search(r"linear probe .*\d+% \(\d+%–\d+%\)", rows[0]), rows


def _download_target(page, selector: str):
    """The clickable thing of a DownloadButton (a <button> with the id) or a gr.File (a link)."""
    loc = page.locator(selector).first
    if loc.evaluate("e => e.tagName") in ("BUTTON", "A"):
        return loc
    link = page.locator(f"{selector} a[download], {selector} a[href*='file=']")
    if link.count():
        return link.first
    return page.locator(f"{selector} button").first


# --------------------------------------------------------------------------- the walk-through


@pytest.mark.timeout(900)
def test_new_user_walkthrough(page, tmp_path):
    """Every step as a new user takes it, with five real training runs (about 100 s alone on 2 cores,
    up to 7 minutes while the other test process trains too): hence its own 15-minute limit."""
    shots = []

    # 1. A new user opens the page.
    page.wait_for_timeout(500)
    bh.assert_no_crash_signs(page)
    shots.append(bh.screenshot(page, 1, "open"))
    a11y.assert_steps_accessible(page, "empty")   # axe-core, WCAG 2.1 A/AA: every step before any data

    # Start before any data is loaded: refused in plain words (no silent run on a sample).
    _click(page, "#start-btn")
    bh.wait_for_text(page, "#train-status", "Load a dataset first", timeout_s=30)
    assert not bh.is_shown(page, "#to-results"), "'See the results' is offered before any run"
    assert "No data loaded yet" in bh.text_of(page, "#data-summary")
    bh.assert_no_crash_signs(page)
    a11y.assert_steps_accessible(page, "error-shown", ["train"])

    # 2. Load the bundled digits sample; the summary shows examples and per-class counts.
    _click(page, "#use-sample-image")
    bh.wait_for_regex(page, "#data-summary", r"\d+\s+(examples|images)", timeout_s=90)
    bh.wait_until(lambda: bh.plot_has_data(page, "class-counts"), 30, "#class-counts to draw", page=page)
    summary_text = bh.text_of(page, "#data-summary")
    assert re.search(r"\b10 classes", summary_text), f"the digits sample should show 10 classes: {summary_text!r}"
    assert not bh.text_of(page, "#data-error").strip(), f"#data-error after the sample: {bh.text_of(page, '#data-error')!r}"
    bh.assert_no_crash_signs(page)
    if page.locator("#data-gallery").count():
        bh.wait_images_loaded(page, "#data-gallery")
    shots.append(bh.screenshot(page, 2, "sample-data-loaded"))
    a11y.assert_steps_accessible(page, "data-loaded", ["data", "model"])

    # 3. Model + strategy + small advanced options (fast on 2 CPU cores).
    bh.choose(page, "model-choice", "efficientnet_lite0")
    bh.choose(page, "strategy-choice", "linear_probe")
    bh.wait_for_regex(page, "#strategy-info", r"\d", timeout_s=30)  # trainable share / time estimate
    assert bh.set_number(page, "epochs", 3), "no #epochs field"
    bh.set_number(page, "image-size", 64)  # optional: only when the app offers it
    # "Which model suits my data?" (at 64 px, on a sample of the digits: conftest) ranks every offline
    # image model in a worker process and preselects the best; below it, the map of the data in that
    # model's embeddings and its possible label problems. The choice stays the user's: this walk-through
    # keeps EfficientNet-Lite0.
    _click(page, "#advisor-btn")
    bh.wait_for_regex(page, "#advisor-note", r"suits your data best", timeout_s=TRAIN_TIMEOUT_S)
    assert bh.is_shown(page, "#advisor-table") and "kNN accuracy" in bh.text_of(page, "#advisor-table")
    assert "What the numbers mean" in bh.text_of(page, "#advisor-note")
    assert len(bh.table_rows(page, "advisor-table")) >= 3
    shots.append(bh.screenshot(page, 3, "model-advisor"))
    bh.wait_until(lambda: bh.plot_has_data(page, "data-map-plot"), 30, "#data-map-plot to draw", page=page)
    assert "Map of your data" in bh.text_of(page, "#data-map-note")
    page.locator("#data-map-plot").scroll_into_view_if_needed()
    shots.append(bh.screenshot(page, 3, "data-map"))
    a11y.assert_accessible(page, "advisor-shown")
    bh.choose(page, "model-choice", "efficientnet_lite0")
    shots.append(bh.screenshot(page, 3, "model-strategy-chosen"))
    a11y.assert_accessible(page, "data-loaded-strategy")

    # 4. Start; the curves fill in while the status advances; the run finishes.
    _click(page, "#start-btn")
    bh.wait_until(lambda: _progress_seen(_status(page)) or "finished" in _status(page).lower(),
                  TRAIN_TIMEOUT_S, "#train-status to show progress", page=page,
                  describe=lambda: f"#train-status shows {_status(page)!r}")
    _wait_plot_while_training(page, "loss-plot")
    first_points = bh.count_line_points(page, "loss-plot")
    shots.append(bh.screenshot(page, 4, "training-curves"))
    a11y.assert_accessible(page, "training-train")
    _wait_finished(page)
    page.wait_for_timeout(1_000)  # the last plot rows arrive with the final event
    last_points = bh.count_line_points(page, "loss-plot")
    assert last_points >= max(2, first_points), (
        f"the loss curve did not grow: {first_points} points while training, {last_points} at the end")
    assert bh.plot_has_data(page, "acc-plot"), (
        f"#acc-plot shows no visible curve after 3 epochs: {bh.plot_marks(page, 'acc-plot')}")
    # one colour per series name, the same in both plots
    loss_colours, acc_colours = bh.series_colours(page, "loss-plot"), bh.series_colours(page, "acc-plot")
    assert set(loss_colours) == {"training", "validation"}, loss_colours
    assert loss_colours == acc_colours, f"the plots colour their series differently: {loss_colours} vs {acc_colours}"
    log_text = page.locator("#train-log textarea").first.input_value()
    # the probe's head is fitted by a full-batch solver: one line for it, not one per epoch
    assert "best so far" not in log_text and "iterations (full-batch L-BFGS)" in log_text, log_text
    axis_titles = page.locator("#acc-plot g.role-axis-title text").all_text_contents()   # vega's SVG
    assert any("iteration" in t for t in axis_titles), f"the probe's x axis is not labelled by iteration: {axis_titles}"
    assert re.search(r"training loop [\d.]+ s; whole run", log_text, re.I), log_text
    assert bh.is_shown(page, "#to-results"), "no 'See the results' after the run finished"
    bh.assert_no_crash_signs(page)
    shots.append(bh.screenshot(page, 5, "training-finished"))
    a11y.assert_accessible(page, "finished-train")
    # the curves in words, and what a screen reader was told (the live region, at a calm rate)
    # (a linear probe may be fitted by iterations of a full-batch solver instead of epochs)
    curves_text = bh.text_of(page, "#curves-text")
    assert re.search(r"after (epoch 3 of 3|iteration \d+), validation accuracy \d", curves_text), curves_text
    assert page.locator("#curves-text details tbody tr").count() >= 1
    assert "Training finished: accuracy" in bh.text_of(page, "#train-announce")
    progress = page.locator("#train-progress [role=progressbar]")
    assert progress.get_attribute("aria-valuenow") == "100" and progress.get_attribute("aria-label")

    # 5. Results (through the "See the results" button when the page offers it): an accuracy
    #    value and a rendered confusion matrix.
    if page.locator("#to-results:visible").count():
        page.locator("#to-results").click()
    bh.ensure_visible(page, "#metrics-table")
    # the probe's head was fitted to convergence: nothing to train further, said before any click
    bh.wait_for_text(page, "#continue-note", "fitted to convergence", timeout_s=15)
    assert not bh.button_enabled(page, "#continue-btn"), "'Train more epochs' enabled for a converged probe"
    bh.wait_for_regex(page, "#metrics-table", r"accuracy", timeout_s=30)
    metrics_text = bh.text_of(page, "#metrics-table")
    assert re.search(r"accuracy[\s\S]*?(\d+(\.\d+)?\s*%|0\.\d+|1\.0+)", metrics_text, re.I), (
        f"no accuracy value in #metrics-table: {metrics_text!r}")
    _check_evidence(page)
    bh.ensure_visible(page, "#confusion-plot")
    bh.wait_until(lambda: _plot_rendered(page, "confusion-plot"), 30, "#confusion-plot to render",
                  page=page)
    if page.locator("#mistakes-gallery").count():
        bh.wait_images_loaded(page, "#mistakes-gallery")
    shots.append(bh.screenshot(page, 6, "results"))
    a11y.assert_accessible(page, "results-results")
    assert re.search(r"right on \d+ of \d+ test examples", bh.text_of(page, "#confusion-plot"), re.I)
    assert page.locator("#reliability-text details td").count() >= 3   # the diagram as a table
    if os.environ.get("TL_UPDATE_SCREENSHOTS") == "1":  # the README's picture of the Results step
        (bh.REPO_ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
        shutil.copy(shots[-1], bh.REPO_ROOT / "docs" / "screenshots" / "results.png")

    # 6. Try it: upload one digit and read class probabilities.
    digit = bh.sample_digit_png(tmp_path)
    bh.upload(page, "try-image", digit)
    page.wait_for_selector("#try-image img", timeout=15_000)
    _click(page, "#try-btn")
    bh.wait_for_regex(page, "#try-output", r"\d+(\.\d+)?\s*%|0\.\d+", timeout_s=60)
    assert re.search(r"\b[0-9]\b", bh.text_of(page, "#try-output")), (
        f"#try-output has no class name: {bh.text_of(page, '#try-output')!r}")
    set_text = bh.wait_for_text(page, "#try-set", "Prediction set", timeout_s=15)
    assert re.search(r"Prediction set:\s*(one of: )?[0-9]", set_text), f"#try-set: {set_text!r}"
    bh.assert_no_crash_signs(page)
    shots.append(bh.screenshot(page, 7, "try-prediction"))
    _click(page, "#try-why-btn")   # what the answer rests on: a Grad-CAM overlay of the same digit
    page.wait_for_selector("#try-why img.tl-why-map", timeout=60_000)
    assert "Warmer colours" in bh.wait_for_text(page, "#try-why-note", "Why", timeout_s=15)
    shots.append(bh.screenshot(page, 7, "try-why"))
    # ...and what it looked at in its most confident mistakes (Grad-CAM overlays)
    _click(page, "#mistakes-why-btn")
    page.wait_for_selector("#mistakes-why-gallery img", timeout=90_000)
    assert "went wrong" in bh.wait_for_text(page, "#mistakes-why-note", "went wrong", timeout_s=15)
    page.locator("#mistakes-why-gallery").scroll_into_view_if_needed()
    shots.append(bh.screenshot(page, 7, "mistakes-why"))
    # one axe pass for the three answers on the page together: the prediction, its map and the mistakes' maps
    a11y.assert_accessible(page, "results-prediction-and-why")
    # a photo is nothing like the digits it learned from: the answer comes with a warning in words
    bh.upload(page, "try-image", bh.REPO_ROOT / "tests" / "data" / "imagenet" / "imagenet_00_243.jpg")
    page.wait_for_selector("#try-image img", timeout=15_000)
    _click(page, "#try-btn")
    bh.wait_for_text(page, "#try-set", "unlike the training data", timeout_s=60)
    shots.append(bh.screenshot(page, 7, "try-unlike"))
    a11y.assert_accessible(page, "results-unlike")

    # 7. Download the exported model as a zip.
    bh.ensure_visible(page, "#download-model")
    target = _download_target(page, "#download-model")
    with page.expect_download(timeout=60_000) as info:
        target.click()
    saved = tmp_path / (info.value.suggested_filename or "model.zip")
    info.value.save_as(str(saved))
    assert zipfile.is_zipfile(saved), f"the model download is not a zip: {saved.name}"
    with zipfile.ZipFile(saved) as zf:
        names = {Path(n).name for n in zf.namelist()}
    assert {"model.safetensors", "config.json"} <= names, f"model zip holds {sorted(names)}"
    shots.append(bh.screenshot(page, 8, "model-downloaded"))

    # 8. A longer second run (full fine-tuning), stopped mid-way; the app stays usable.
    _start_run(page, "full_finetune" if page.locator(
        "#strategy-choice input[value='full_finetune']").count() else "full", epochs=30)
    bh.wait_until(lambda: _progress_seen(_status(page)) and "finished" not in _status(page).lower(),
                  TRAIN_TIMEOUT_S, "the second run to be training", page=page,
                  describe=lambda: f"#train-status shows {_status(page)!r}")
    assert not bh.is_shown(page, "#to-results"), "'See the results' (of the first run) shown during the second"
    shots.append(bh.screenshot(page, 9, "second-run-training"))
    _click(page, "#stop-btn")
    text = bh.wait_for_text(page, "#train-status", ["Stopped", "Finished", "Failed"], timeout_s=STOP_TIMEOUT_S)
    assert "stopped" in text.lower(), f"after Stop, #train-status shows {text!r}"
    bh.wait_until(lambda: bh.button_enabled(page, "#start-btn"), 30, "#start-btn enabled after Stop", page=page)
    assert not bh.is_shown(page, "#to-results"), "'See the results' shown after a stopped run"
    bh.assert_no_crash_signs(page)
    shots.append(bh.screenshot(page, 10, "second-run-stopped"))
    a11y.assert_accessible(page, "stopped-train")

    # A third, tiny run in the same session finishes: Stop left nothing stuck. It also trains the
    # same recipe from random weights, for the comparison in Results. (Partial fine-tuning, so that
    # step 10 can continue it: the probe's head is fitted to convergence and has nothing to continue.)
    bh.set_checkbox(page, "compare-scratch", True)
    _start_run(page, "partial", epochs=1)
    bh.wait_until(lambda: "stopped" not in _status(page).lower(), 60,
                  "the third run to replace the 'Stopped' status", page=page,
                  describe=lambda: f"#train-status shows {_status(page)!r}")
    _wait_finished(page)
    page.wait_for_timeout(1_000)
    # one epoch = one point per accuracy series: drawn as visible point markers
    assert bh.point_markers(page, "acc-plot") >= 2, (
        f"#acc-plot shows no visible point after a 1-epoch run: {bh.plot_marks(page, 'acc-plot')}")
    assert bh.point_markers(page, "loss-plot") >= 1, "the 1-epoch validation loss is not visible"
    bh.wait_until(lambda: bh.is_shown(page, "#to-results"), 15, "'See the results' after the third run",
                  page=page)
    assert "random weights trains next" in _status(page), _status(page)
    log_text = page.locator("#train-log textarea").first.input_value()
    assert "best so far" not in log_text and "lowest validation loss so far" in log_text, log_text
    bh.assert_no_crash_signs(page)
    shots.append(bh.screenshot(page, 11, "third-run-finished"))

    # 9. Results of the third run: the from-scratch comparison fills in by itself once its run ends;
    #    the runs table lists every run; the pretrained and scratch runs are ticked and compared.
    page.locator("#to-results").click()
    bh.wait_for_text(page, "#scratch-comparison", ["still training", "What pretraining bought you"], timeout_s=30)
    shots.append(bh.screenshot(page, 12, "scratch-comparison-waiting"))
    text = bh.wait_for_text(page, "#scratch-comparison", "What pretraining bought you", timeout_s=TRAIN_TIMEOUT_S)
    assert re.search(r"pretrained weights: \d+% \(\d+%–\d+%\); the same recipe from random weights: "
                     r"\d+% \(\d+%–\d+%\)", text), text
    assert re.search(r"gave [+−±]\d+ points? of accuracy on the same \d+ test examples \(95% interval "
                     r"[+−]?\d+ to [+−]?\d+ points\)", text), text
    bh.wait_until(lambda: len(bh.checked_values(page, "compare-runs")) == 2, 60,
                  "the run and its scratch companion to be ticked", page=page)
    bh.wait_until(lambda: bh.plot_has_data(page, "compare-plot"), 30, "#compare-plot to draw", page=page)
    bh.wait_until(lambda: len(set(bh.series_colours(page, "compare-plot").values()) - {"transparent"}) == 2, 15,
                  "#compare-plot to draw both runs in two colours", page=page,
                  describe=lambda: f"legend: {bh.series_colours(page, 'compare-plot')}")
    diff = bh.wait_for_text(page, "#compare-diff", "minus", timeout_s=15)
    assert re.search(r"minus .* (95% interval .* points\) )?on the same \d+ test examples", diff), diff
    rows = bh.table_rows(page, "runs-table")
    assert len(rows) >= 4 and sum("random weights" in r for r in rows) == 1, rows   # 3 runs + the companion
    assert any(re.search(r"\d+% \(\d+%–\d+%\)", r) for r in rows), rows
    bh.ensure_visible(page, "#runs-table")
    page.locator("#compare-diff").scroll_into_view_if_needed()
    bh.assert_no_crash_signs(page)
    shots.append(bh.screenshot(page, 13, "scratch-comparison-and-runs"))
    assert "In words, the validation accuracy of the ticked runs" in bh.text_of(page, "#compare-diff")
    a11y.assert_accessible(page, "results-compared")

    # 10. "Train more epochs" on the shown run: a new run from its best weights, followed on step 4,
    #     its epochs numbered after its parent's; the runs list says which run it continues.
    assert bh.set_number(page, "more-epochs", 2), "no #more-epochs field to set"
    _click(page, "#continue-btn")
    bh.wait_for_text(page, "#continue-note", "more epochs from run", timeout_s=30)
    bh.wait_until(lambda: "stopped" not in _status(page).lower() and bh.is_shown(page, "#train-status"), 30,
                  "step 4 to follow the continued run", page=page)
    _wait_finished(page)
    shots.append(bh.screenshot(page, 14, "continued-run-finished"))
    page.locator("#to-results").click()
    bh.wait_until(lambda: "continues" in (page.locator("#previous-runs input").first.input_value() or ""), 30,
                  "the continued run's results, labelled with its parent", page=page)
    bh.assert_no_crash_signs(page)
    shots.append(bh.screenshot(page, 15, "continued-run-results"))
    a11y.assert_accessible(page, "results-continued")
    assert len(shots) == 20


# --------------------------------------------------------------------------- bad uploads


@pytest.mark.parametrize("case", list(bh.BAD_INPUTS), ids=list(bh.BAD_INPUTS))
def test_bad_upload_shows_plain_error(upload_page, tmp_path, case):
    page = upload_page
    builder, key_words = bh.BAD_INPUTS[case]
    number = 20 + list(bh.BAD_INPUTS).index(case)
    bad = builder(tmp_path)

    bh.upload(page, "data-upload", bad)
    text = bh.wait_for_text(page, "#data-error", key_words, timeout_s=60, all_words=True)
    assert len(text.strip()) > 20, f"#data-error is too terse to help: {text!r}"
    assert "Traceback" not in text and 'File "' not in text, f"#data-error shows Python internals: {text!r}"
    bh.screenshot(page, number, f"bad-{case}")
    bh.assert_no_crash_signs(page)


def test_zip_slip_is_refused_and_writes_nothing_outside(upload_page, tmp_path):
    page = upload_page
    marker = f"tl_zipslip_{uuid.uuid4().hex[:10]}"
    bad = bh.build_zip_slip(tmp_path, marker)

    bh.upload(page, "data-upload", bad)
    text = bh.wait_for_text(page, "#data-error", ["sneaky.zip", "unsafe", "outside"], all_words=True, timeout_s=60)
    assert "Traceback" not in text, f"#data-error shows Python internals: {text!r}"
    bh.screenshot(page, 19, "bad-zip-slip")
    bh.assert_no_crash_signs(page)
    escaped = [p for p in (Path("/tmp") / f"{marker}_rel.png", Path("/tmp") / f"{marker}_abs.png") if p.exists()]
    for p in escaped:
        os.remove(p)
    assert not escaped, f"the zip-slip upload wrote outside its working folder: {escaped}"


def test_failed_upload_after_the_sample_says_what_stays_loaded(page, tmp_path):
    """A bad file after good data: the error says the previous data is still the one in use."""
    _click(page, "#use-sample-image")
    bh.wait_for_regex(page, "#data-summary", r"\d+\s+images", timeout_s=90)
    bh.upload(page, "data-upload", bh.build_empty_zip(tmp_path))
    text = bh.wait_for_text(page, "#data-error", ["empty.zip", "still using", "sample images"], all_words=True,
                            timeout_s=60)
    assert "300 images" in text, text
    assert re.search(r"300 images", bh.text_of(page, "#data-summary")), "the summary no longer names the sample"
    # the error is a visible warning box, not plain text
    assert page.locator("#data-error .tl-warn").count() == 1
    bh.screenshot(page, 31, "bad-upload-after-sample")
    a11y.assert_accessible(page, "error-shown-data")
    bh.assert_no_crash_signs(page)


def test_text_sample_preselects_lora_and_says_why(page):
    _click(page, "#use-sample-text")
    bh.wait_for_regex(page, "#data-summary", r"\d+\s+texts", timeout_s=90)
    bh.ensure_visible(page, "#strategy-choice")
    bh.wait_until(lambda: page.locator("#strategy-choice input[value='lora']").is_checked(), 15,
                  "LoRA to be preselected for texts", page=page)
    info = bh.wait_for_text(page, "#strategy-info", ["preselected for your 400 texts", "Rough time"], all_words=True,
                            timeout_s=60)
    assert info.count("LoRA: add small trainable") == 1, info
    bh.screenshot(page, 32, "text-sample-strategy")
    bh.assert_no_crash_signs(page)


def test_error_clears_after_a_good_upload(page, tmp_path):
    """After a bad upload, loading good data empties #data-error (the user is not left confused)."""
    bh.upload(page, "data-upload", bh.build_not_a_zip(tmp_path))
    bh.wait_until(lambda: bh.text_of(page, "#data-error").strip(), 60, "an error for not-a-zip", page=page)
    good = tmp_path / "sample_digits.zip"
    shutil.copy(bh.REPO_ROOT / "assets" / "sample_digits.zip", good)
    bh.upload(page, "data-upload", good)
    bh.wait_until(lambda: re.search(r"\d+\s+(examples|images)", bh.text_of(page, "#data-summary")), 90,
                  "#data-summary to describe the good upload", page=page,
                  describe=lambda: (f"#data-summary: {bh.text_of(page, '#data-summary')!r}, #data-error: "
                                    f"{bh.text_of(page, '#data-error')!r}, #data-upload: "
                                    f"{bh.text_of(page, '#data-upload')!r}"))
    bh.wait_until(lambda: not bh.text_of(page, "#data-error").strip(), 15,
                  "#data-error to clear after good data", page=page,
                  describe=lambda: f"#data-error shows {bh.text_of(page, '#data-error')!r}")
    bh.wait_until(lambda: bh.plot_has_data(page, "class-counts"), 30, "#class-counts to draw", page=page)
    bh.wait_images_loaded(page, "#data-gallery")
    bh.screenshot(page, 30, "good-upload-after-error")
    bh.assert_no_crash_signs(page)
