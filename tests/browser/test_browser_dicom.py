"""A clinician's DICOM walk-through in a real browser (Debian Chromium via Playwright).

Uploads a zip of real CT and MR slices (some files without extension), reads the identifiers
sentence, sees windowed previews, switches the DICOM display window to "CT lung" (the previews are
drawn again), trains a tiny linear probe and reaches Results. At every step the page's HTML and
the preview images it shows hold none of the test files' patient names or IDs.
Screenshots: test-artifacts/browser/dicom-*.png (look at them).

Run:  .venv/bin/python -m pytest tests/browser/test_browser_dicom.py -q
"""
from __future__ import annotations

import json
import re

import pytest

from tests.helpers import browser_helpers as bh
from tests.helpers.data_factories import dicom_identifiers, dicom_zip

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_TIMEOUT_S = 150
_SRCS_JS = "(id) => Array.from(document.querySelectorAll('#' + id + ' img')).map(i => i.src)"


def _shot(page, name: str) -> None:
    bh.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(bh.ARTIFACTS / f"dicom-{name}.png"), full_page=True)


def _no_identifiers(page, secrets: set[str], where: str) -> None:
    html = page.content()
    leaked = sorted(s for s in secrets if s in html)
    assert not leaked, f"patient identifiers {leaked} are in the page's HTML ({where})"


def _srcs(page, elem_id: str = "data-gallery") -> list[str]:
    return page.evaluate(_SRCS_JS, elem_id)


def _gallery_pngs(page, secrets: set[str], elem_id: str = "data-gallery") -> dict[str, bytes]:
    """{src: bytes} of a gallery's images: each a PNG (never a DICOM) without the identifiers."""
    srcs = _srcs(page, elem_id)
    assert srcs, "the gallery shows no image"
    images = {}
    for src in srcs:
        assert "tl_private" in src and src.endswith(".png"), f"a preview outside the private folder: {src}"
        response = page.request.get(src)
        assert response.ok, f"{src}: HTTP {response.status}"
        body = response.body()
        assert body[:8] == b"\x89PNG\r\n\x1a\n", f"{src} is not a PNG"
        assert b"DICM" not in body and not any(s.encode() in body for s in secrets), f"{src} carries DICOM data"
        assert not re.search(rb"tEXt|iTXt|zTXt|eXIf|iCCP", body), f"{src} carries metadata chunks"
        images[src] = body
    return images


def _newest_run_json(server):
    runs = sorted(server.lab.workspace.root.glob("*/runs/*/run.json"), key=lambda p: p.stat().st_mtime)
    assert runs, "no run.json was written"
    return runs[-1]


def test_dicom_upload_window_and_run_show_no_identifiers(page, launched_server, tmp_path):
    secrets = {s for s in dicom_identifiers("CT_small.dcm", "MR_small.dcm") if len(s) >= 4}
    assert secrets
    data = dicom_zip(tmp_path / "scans.zip", n_per_class=6)
    _no_identifiers(page, secrets, "on opening")
    assert not bh.is_shown(page, "#dicom-window"), "the DICOM window is offered before any DICOM data"

    # Data: the summary names the classes and says what happens to the identifiers.
    bh.upload(page, "data-upload", data)
    summary = bh.wait_for_text(page, "#data-summary", "Patient identifiers", timeout_s=90)
    assert re.search(r"12 images\b.*\b2 classes", summary), summary
    assert re.search(r"neither keeps nor shows them.*pixels alone.*file name inside your upload.*"
                     r"deleted after 24 hours without activity", summary, re.S), summary
    assert not bh.text_of(page, "#data-error").strip(), bh.text_of(page, "#data-error")
    bh.wait_until(lambda: bh.is_shown(page, "#dicom-window"), 15, "#dicom-window to be offered", page=page)
    assert "DICOM display window" in bh.text_of(page, "#dicom-window")
    bh.wait_until(lambda: len(_srcs(page)) == 12, 30, "12 previews in #data-gallery",
                  page=page, describe=lambda: f"srcs: {_srcs(page)}")
    bh.wait_images_loaded(page, "#data-gallery")
    header_pngs = _gallery_pngs(page, secrets)
    assert len(header_pngs) == 12, f"expected 12 previews, got {len(header_pngs)}"
    _no_identifiers(page, secrets, "after the upload")
    bh.assert_no_crash_signs(page)

    # The window: "CT lung" draws the previews again (new files, other pixels).
    bh.choose(page, "dicom-window", "CT lung")
    bh.wait_until(lambda: (srcs := _srcs(page)) and set(srcs).isdisjoint(header_pngs), 30,
                  "the gallery to show previews drawn with the lung window", page=page)
    bh.wait_idle(page, "data-gallery")
    bh.wait_images_loaded(page, "#data-gallery")
    lung_pngs = _gallery_pngs(page, secrets)
    assert len(lung_pngs) == 12 and set(lung_pngs.values()).isdisjoint(header_pngs.values()), (
        "the lung window did not change the previews")
    assert page.locator("#dicom-window input").first.input_value() == "CT lung"
    _no_identifiers(page, secrets, "after choosing the lung window")
    page.locator("#data-summary").scroll_into_view_if_needed()
    _shot(page, "data-lung-window")

    # Strategy: keep the linear probe; a tiny run (image size 64, 3 epochs).
    bh.ensure_visible(page, "#strategy-choice")
    assert page.locator("#strategy-choice input[value='linear_probe']").is_checked()
    bh.wait_for_regex(page, "#strategy-info", r"\d", timeout_s=30)
    assert bh.set_number(page, "epochs", 3), "no #epochs field"
    assert bh.set_number(page, "image-size", 64), "no #image-size field"
    _no_identifiers(page, secrets, "in the strategy step")

    # Train to the end, then Results.
    bh.ensure_visible(page, "#start-btn")
    page.locator("#start-btn").first.click()
    text = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=TRAIN_TIMEOUT_S)
    assert "finished" in text.lower(), f"the run did not finish: {text!r}"
    _no_identifiers(page, secrets, "after training")
    run_json = _newest_run_json(launched_server)
    config = json.loads(run_json.read_text())
    n_mistakes = len(json.loads((run_json.parent / "metrics.json").read_text()).get("mistakes") or [])
    assert config["dicom_window"] == "lung" and config["data_path"].endswith("scans.zip"), (
        config["dicom_window"], config["data_path"])
    bh.wait_until(lambda: bh.is_shown(page, "#to-results"), 15, "'See the results'", page=page)
    page.locator("#to-results").click()
    bh.wait_for_text(page, "#results-summary", "95% interval", timeout_s=60)
    if n_mistakes:   # the run's own previews, shown through the same metadata-free thumbnails
        bh.wait_until(lambda: len(_srcs(page, "mistakes-gallery")) == min(n_mistakes, 12), 30,
                      f"{n_mistakes} preview(s) in #mistakes-gallery", page=page,
                      describe=lambda: f"srcs: {_srcs(page, 'mistakes-gallery')}")
        bh.wait_images_loaded(page, "#mistakes-gallery")
        _gallery_pngs(page, secrets, "mistakes-gallery")
    bh.assert_no_crash_signs(page)
    _no_identifiers(page, secrets, "in Results")
    _shot(page, "results")
