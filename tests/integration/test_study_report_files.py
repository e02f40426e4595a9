"""The study report as files through processes: the CLI, the PDF (WeasyPrint), and a fresh interpreter that must not import torch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.report_checks import pdf_text, render_first_pages
from tests.helpers.report_fixtures import report_runs

from tl_ui.study_report import write_report
from tl_ui.study_report.checklist import SECTIONS
from tl_ui.study_report.quote import format_value

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return report_runs(tmp_path_factory.mktemp("report-runs"))


# -- the numbers ---------------------------------------------------------------------------------


# -- the structure --------------------------------------------------------------------------------


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}"')
    return page[start:page.index("</section>", start)]


def test_the_report_loads_no_model_and_imports_no_torch(runs, tmp_path):
    code = ("import sys; from tl_ui.study_report import write_report; "
            f"write_report({str(runs['binary'].path)!r}, {str(tmp_path / 'r.html')!r}); "
            "print('torch' in sys.modules, 'gradio' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


# -- files: service, CLI, PDF ----------------------------------------------------------------------


def test_the_cli_writes_html_and_refuses_other_names(runs, tmp_path):
    run = runs["binary"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "study.html"
    done = subprocess.run([sys.executable, "-m", "tl_ui", "report", "--run", str(run.path), "--compare",
                           str(runs["three"].path), "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and "TRIPOD+AI checklist" in out.read_text()
    bad = subprocess.run([sys.executable, "-m", "tl_ui", "report", "--run", str(run.path), "--out",
                          str(tmp_path / "study.docx")], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert bad.returncode == 2 and ".html or .pdf" in bad.stderr and "Traceback" not in bad.stderr


def test_without_weasyprint_the_pdf_is_said_unavailable_and_the_html_still_works(runs, tmp_path):
    run_dir = runs["multilabel"].path
    code = ("import sys; sys.modules['weasyprint'] = None\n"   # as if the 'report' extra were not installed
            "from tl_ui.service.report import write_run_report\n"
            f"out = write_run_report({str(run_dir)!r})\n"
            "print(out['html'] is not None, out['pdf'] is None)\n"
            "print(out['pdf_problem'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr
    first, sentence = done.stdout.strip().split("\n", 1)
    assert first == "True True"
    assert "needs WeasyPrint" in sentence and "HTML report works" in sentence


@pytest.mark.parametrize("which", ["binary", "multilabel"])
def test_the_pdf_opens_with_page_numbers_and_every_section(runs, which):
    pytest.importorskip("weasyprint")
    pytest.importorskip("pypdf")
    run = runs[which]
    pdf = write_report(run.path, run.path / "report" / "report.pdf")
    pages, text = pdf_text(pdf)
    assert pages >= 8
    flat = " ".join(text.split())
    assert "Page 1 of" in flat and f"Page {pages} of {pages}" in flat
    for _, title in SECTIONS:
        assert title.split(":")[0] in flat, title
    metrics = json.loads(run.metrics_json.read_text())
    assert format_value(metrics["accuracy"], "percent") in flat
    shots = render_first_pages(pdf, f"fixture-{which}")
    if shutil.which("pdftoppm"):
        assert len(shots) == 2
