"""A study report of a run, laid out by TRIPOD+AI (Collins et al., BMJ 2024;385:e078378), as one
self-contained HTML page and as a PDF, written from the run folder(s) alone (issue 35).

    from tl_ui.study_report import report_html, write_report
    html = report_html("runs/run1", compare=["runs/run2"])
    write_report("runs/run1", "report.pdf")            # .html or .pdf, written atomically

One concern per module: `data_summary` (the data file read again, sha256 checked), `facts` (a run
folder into a typed `RunReport`), `tables`, `figures` (inline SVG via `svg`), `limitations`,
`checklist` (the TRIPOD+AI items and where the report answers them), `build` (the report's
context), `render` (Jinja2 templates in templates/), `pdf` (WeasyPrint). No torch; no model is
loaded. docs/study-report.md says what each section reads.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterable

from tl_ui.study_report.build import build_context
from tl_ui.study_report.facts import ReportError
from tl_ui.study_report.pdf import PdfUnavailable, html_to_pdf, pdf_available, pdf_problem
from tl_ui.study_report.render import render_html

FORMATS = ("html", "pdf")


def report_html(run_dir: str | Path, compare: Iterable[str | Path] = ()) -> str:
    """The report of `run_dir` (compared with the runs in `compare`) as one HTML page."""
    return render_html(build_context(run_dir, compare))


def format_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in ("html", "htm"):
        return "html"
    if suffix == "pdf":
        return "pdf"
    raise ReportError(f"A report is written as .html or .pdf; '{Path(path).name}' is neither.")


def write_report(run_dir: str | Path, out: str | Path, compare: Iterable[str | Path] = (),
                 html: str | None = None) -> Path:
    """Write the report to `out` (.html or .pdf) atomically: a temporary name beside it, then a rename.
    `html`: the page already rendered (one rendering for both formats)."""
    out = Path(out)
    kind = format_of(out)
    if kind == "pdf" and not pdf_available():
        raise PdfUnavailable(pdf_problem())
    page = html if html is not None else report_html(run_dir, compare)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if kind == "html":
            tmp.write_text(page, encoding="utf-8")
        else:
            html_to_pdf(page, tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


__all__ = ["FORMATS", "PdfUnavailable", "ReportError", "build_context", "format_of", "pdf_available", "pdf_problem",
           "render_html", "report_html", "write_report"]
