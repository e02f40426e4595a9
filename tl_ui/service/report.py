"""The study report verb (issue 35), called by the CLI (`python -m tl_ui report`), the API's `/download`
(what=report | report_pdf) and the Results step's "Download report".

A report is written into its run's folder (`report/report.html`, `report/report.pdf`, paths from
`RunFolder`) atomically, and rewritten only when a file it reads has changed since. It reads files
only (no model, no torch), so it runs in the web process. The page and the API hand out owner-only
copies of those files (service/private_files.py), like the other downloads.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Optional

from tl_ui.core.runfolder import RunFolder
from tl_ui.service.errors import UserError

log = logging.getLogger(__name__)

# The files a report reads: a report older than any of them is written again.
SOURCES = ("metrics.json", "run.json", "status.json", "predictions.csv", "model/transfer_lab.json")


def _code_time() -> float:
    """When the report's code or templates last changed (an upgraded app writes its reports again)."""
    import tl_ui.study_report as package

    return max(p.stat().st_mtime for p in Path(package.__file__).parent.rglob("*") if p.is_file())


def _stale(target: Path, run: RunFolder) -> bool:
    if not target.is_file():
        return True
    made = target.stat().st_mtime
    if _code_time() > made:
        return True
    return any((run.path / name).is_file() and (run.path / name).stat().st_mtime > made for name in SOURCES)


def write_run_report(run_dir: str | Path, formats: Iterable[str] = ("html", "pdf")) -> dict[str, Optional[Path]]:
    """The run's report in its own folder: {"html": path, "pdf": path or None, "pdf_problem": sentence or
    None}. A format already written and newer than every file it reads is reused."""
    from tl_ui.study_report import PdfUnavailable, ReportError, pdf_problem, report_html, write_report

    run = RunFolder(run_dir)
    formats = tuple(formats)
    out: dict = {"html": None, "pdf": None, "pdf_problem": None}
    targets = {"html": run.report_html, "pdf": run.report_pdf}
    wanted = [f for f in ("html", "pdf") if f in formats]
    if "pdf" in wanted and pdf_problem():
        out["pdf_problem"] = pdf_problem()
        wanted.remove("pdf")
    page = None
    try:
        for kind in wanted:
            target = targets[kind]
            if _stale(target, run):
                page = page if page is not None else report_html(run.path)
                write_report(run.path, target, html=page)
                log.info("run %s: study report written (%s)", run.id, target.name)
            out[kind] = target
    except ReportError as exc:
        raise UserError(str(exc)) from None
    except PdfUnavailable as exc:   # Pango went missing after the check: say so, keep the HTML
        out["pdf"], out["pdf_problem"] = None, str(exc)
    return out


def export_report(run_dir: str | Path, out: str | Path, compare: Iterable[str | Path] = ()) -> Path:
    """The CLI's `report`: the report of `run_dir` (with `compare` beside it) written to `out` (.html or .pdf)."""
    from tl_ui.study_report import PdfUnavailable, ReportError, write_report

    try:
        return write_report(run_dir, out, compare=list(compare))
    except (ReportError, PdfUnavailable) as exc:
        raise UserError(str(exc)) from None


def owner_report_files(lab, owner, run_id: str, formats: Iterable[str] = ("html", "pdf")) -> dict:
    """Owner-only copies of one of the owner's run reports, for the page and the API:
    {"report": html copy, "report_pdf": pdf copy or None, "pdf_problem": sentence or None}."""
    run = lab.run(owner, run_id)
    written = write_run_report(run.path, formats)
    folder = lab.private.new_folder(owner, f"report-{run.id}")
    copy = lab.private.copy
    return {
        "report": copy(owner, written["html"], f"report-{run.id}.html", folder) if written["html"] else None,
        "report_pdf": copy(owner, written["pdf"], f"report-{run.id}.pdf", folder) if written["pdf"] else None,
        "pdf_problem": written["pdf_problem"],
    }
