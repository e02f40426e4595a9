"""Step 6 · Validate & use in a real browser (issue 34): train on the sample digits, then check the finished run on a
second upload (the same digits from "another site": turned a quarter, contrast cut), read the side-by-side table
and its sentences, recalibrate for that site in one click (before vs after on the held-back half, a new linked run
to download), score a batch of unlabelled images and download the table. axe-core finds no violation on
the new step, before and after. Screenshots: test-artifacts/browser/6x-validate-*.png (look at them).

Run:  .venv/bin/python -m pytest tests/browser/test_browser_validate.py -q
"""
from __future__ import annotations

import csv
import io
import zipfile

import pytest
from PIL import Image, ImageEnhance

from tests.helpers import a11y_helpers as a11y
from tests.helpers import browser_helpers as bh

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TRAIN_TIMEOUT_S = 240
LONG_TIMEOUT_S = 300


def _second_site(folder, labelled: bool):
    """40 sample digits (4 per class) as another site sends them: turned a quarter, contrast cut."""
    path = folder / ("site_b.zip" if labelled else "batch.zip")
    with zipfile.ZipFile(bh.REPO_ROOT / "assets" / "sample_digits.zip") as source, zipfile.ZipFile(path, "w") as out:
        names = sorted(n for n in source.namelist() if n.endswith(".png"))
        per_class: dict[str, int] = {}
        for name in names:
            label = name.split("/")[-2]
            if per_class.get(label, 0) >= 4:
                continue
            per_class[label] = per_class.get(label, 0) + 1
            image = ImageEnhance.Contrast(Image.open(io.BytesIO(source.read(name))).convert("L").rotate(90)).enhance(0.35)
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            out.writestr(f"site_b/{label}/{name.split('/')[-1]}" if labelled else f"scans/{name.split('/')[-1]}",
                         buffer.getvalue())
    return path


@pytest.fixture
def page(browser, app_url):  # noqa: F811
    context = bh.new_context(browser, {"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.goto(app_url)
    pg.wait_for_selector("[role=tab]", state="attached", timeout=60_000)
    bh.render_all_tabs(pg)
    yield pg
    context.close()


def test_validate_a_run_on_a_second_upload_and_download_the_scored_table(page, tmp_path):
    # a finished run: the sample digits, the defaults
    a11y.visit_step(page, "data")
    page.locator("#use-sample-image").click()
    bh.wait_for_regex(page, "#data-summary", r"\d+\s+(examples|images)", timeout_s=90)
    a11y.visit_step(page, "train")
    page.locator("#start-btn").click()
    text = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=TRAIN_TIMEOUT_S)
    assert "finished" in text.lower(), text

    # 6 · Validate & use: the run is offered; nothing checked yet
    a11y.visit_step(page, "validate")
    bh.wait_until(lambda: page.locator("#validate-run input").input_value() != "", 30, "a finished run offered",
                  page=page)
    a11y.assert_accessible(page, "validate-empty")
    bh.screenshot(page, 60, "validate-1-empty")

    # a second site's labelled data: the side-by-side, each number with its interval, and the sentences
    bh.upload(page, "validate-upload", _second_site(tmp_path, labelled=True))
    bh.wait_idle(page, "validate-upload")
    page.locator("#validate-btn").click()
    status = bh.wait_for_text(page, "#validate-status", ["Checked on", "Problem"], timeout_s=LONG_TIMEOUT_S)
    assert "Checked on 40 new examples" in status, status
    table = bh.text_of(page, "#validation-side-by-side")
    for words in ("Own test examples", "New data", "Accuracy", "Macro-F1", "Recall of '7'", "Calibration error"):
        assert words in table, (words, table)
    sentences = bh.text_of(page, "#validate-sentences")
    assert "new data" in sentences and "unlike the training data" in sentences, sentences
    bh.wait_until(lambda: page.locator("#validate-files a").count() >= 2, 30, "the validation files", page=page)
    a11y.assert_accessible(page, "validate-checked")
    bh.screenshot(page, 61, "validate-2-checked")

    # one click: recalibrated for that site on half of the upload, checked on the other half, saved as a new run
    page.locator("#recal-site textarea, #recal-site input").first.fill("Site B")
    page.locator("#recal-btn").click()
    status = bh.wait_for_text(page, "#recal-status", ["Refitted on", "Problem"], timeout_s=LONG_TIMEOUT_S)
    assert "Refitted on 20 of your 40 new examples; on the other 20 the calibration error" in status, status
    assert "recalibrated for Site B" in status, status
    table = bh.text_of(page, "#recalibration-before-after")
    for words in ("Before (as trained)", "After recalibration", "Calibration error (ECE)", "Accuracy"):
        assert words in table, (words, table)
    bh.wait_until(lambda: page.locator("#recal-files a").count() >= 1, 30, "the new run's downloads", page=page)
    a11y.assert_accessible(page, "validate-recalibrated")
    bh.screenshot(page, 61, "validate-2b-recalibrated")

    # unlabelled inputs: scored, the table downloaded
    bh.upload(page, "batch-upload", _second_site(tmp_path, labelled=False))
    bh.wait_idle(page, "batch-upload")
    page.locator("#batch-btn").click()
    status = bh.wait_for_text(page, "#batch-status", ["inputs scored", "Problem"], timeout_s=LONG_TIMEOUT_S)
    assert "40 inputs scored" in status, status
    links = page.locator("#batch-files a[download], #batch-files a[href*='file=']")
    bh.wait_until(lambda: links.count() >= 1, 30, "the table's download link", page=page)
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    link = links.nth(next(i for i, href in enumerate(hrefs) if href.split("?")[0].endswith("predictions.csv")))
    with page.expect_download(timeout=60_000) as info:
        link.click()
    saved = tmp_path / "predictions.csv"
    info.value.save_as(str(saved))
    with open(saved, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40 and all(r["item"].startswith("scans/") and r["item"].endswith(".png") for r in rows)
    assert {"predicted", "p_0", "p_9", "prediction_set", "unlike_training_data"} <= set(rows[0])
    a11y.assert_accessible(page, "validate-scored")
    bh.screenshot(page, 62, "validate-3-scored")
