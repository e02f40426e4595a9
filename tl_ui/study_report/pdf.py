"""The report as a PDF: WeasyPrint renders the same HTML and CSS (A4, page numbers from CSS paged
media, figures and tables kept whole across pages). WeasyPrint is the optional `report` extra and
needs Pango at run time (Debian: libpango-1.0-0, libpangoft2-1.0-0; a Space: packages.txt); without
it the PDF is said to be unavailable and the HTML report still works."""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

UNAVAILABLE = ("The PDF report needs WeasyPrint, which is not installed here (pip install 'tl_ui[report]'; "
               "it also needs the Pango library). The HTML report works without it and prints to PDF from a browser.")


@lru_cache(maxsize=1)
def pdf_problem() -> Optional[str]:
    """None when PDFs can be made here, else the sentence that says why not."""
    try:
        import weasyprint  # noqa: F401
    except Exception as exc:   # noqa: BLE001 - ImportError, or OSError when Pango is missing
        log.info("no PDF reports: %s", exc)
        return UNAVAILABLE
    return None


def pdf_available() -> bool:
    return pdf_problem() is None


class PdfUnavailable(RuntimeError):
    pass


def html_to_pdf(html: str, out: Path, base_url: Optional[str] = None) -> Path:
    """Render `html` (a whole report page) to the PDF file `out`."""
    problem = pdf_problem()
    if problem:
        raise PdfUnavailable(problem)
    from weasyprint import HTML

    # the report is self-contained: nothing is fetched (no network, no local files beyond base_url)
    HTML(string=html, base_url=base_url or str(Path(out).parent)).write_pdf(str(out))
    return Path(out)
