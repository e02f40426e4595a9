"""Reading a study report back: every number it prints against the file it names, and no other digit.

The report marks each printed number `<span class="q" data-run data-src data-ptr data-style>` and each
quoted sentence `<span class="said" ...>` (tl_ui/study_report/render.py). `check_report_numbers` opens
the named file of the named run folder, follows the JSON pointer, formats the value again and compares
it with the text printed; every other text of the page's body must hold no digit at all, apart from
names from the data or settings (`.name`), the settings' fixed help texts (`.help`), fixed references
(`.ref`: TRIPOD+AI item numbers, the citation), the measure F1, commands (`code`, `pre`) and the figures' drawings (`svg`, whose numbers are in the tables
beside them).
"""
from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from tl_ui.core.runfolder import RunFolder
from tl_ui.study_report.quote import format_value, resolve

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"

EXEMPT_CLASSES = {"name", "ref", "help"}
EXEMPT_TAGS = {"code", "pre", "svg", "style", "script", "head"}
VOID = {"br", "meta", "img", "hr", "link", "input", "col", "wbr"}


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []   # (tag, role): role "q", "said", "exempt" or ""
        self.quotes: list[dict] = []
        self.free: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        role = ""
        if tag == "span" and "q" in classes:
            role = "q"
            self.quotes.append({"kind": "q", **{k[5:]: v for k, v in attrs.items() if k.startswith("data-")}, "text": ""})
        elif tag == "span" and "said" in classes:
            role = "said"
            self.quotes.append({"kind": "said", **{k[5:]: v for k, v in attrs.items() if k.startswith("data-")},
                                "text": ""})
        elif tag in EXEMPT_TAGS or classes & EXEMPT_CLASSES:
            role = "exempt"
        self.stack.append((tag, role))

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data):
        roles = [role for _, role in self.stack]
        if "q" in roles or "said" in roles:
            if self.quotes:
                self.quotes[-1]["text"] += data
            return
        if "exempt" in roles:
            return
        self.free.append(data)


def read_report(page: str) -> _Reader:
    reader = _Reader()
    reader.feed(page)
    return reader


def _documents(run_dirs: dict[str, Path]) -> dict[tuple[str, str], object]:
    from tl_ui.study_report.data_summary import summarise

    docs: dict[tuple[str, str], object] = {}
    for run_id, folder in run_dirs.items():
        folder = Path(folder)
        for source in ("metrics.json", "run.json", "status.json", "model/transfer_lab.json"):
            path = folder / source
            if path.is_file():
                docs[(run_id, source)] = json.loads(path.read_text(encoding="utf-8"))
        config = RunFolder(folder).run_config()
        if config is not None and config.data_path and Path(config.data_path).exists():
            docs[(run_id, "data")] = summarise(Path(config.data_path), config)
    return docs


def check_report_numbers(page: str, run_dirs: dict[str, Path]) -> dict:
    """Assert every quoted number and sentence equals its file's, and that no other digit is printed.
    `run_dirs`: run id -> run folder. Returns counts of what was checked."""
    reader = read_report(page)
    docs = _documents(run_dirs)
    problems = []
    for quote in reader.quotes:
        key = (quote.get("run"), quote.get("src"))
        if key not in docs:
            problems.append(f"{quote} names a file the run folder does not have")
            continue
        try:
            value = resolve(docs[key], quote["ptr"])
        except (KeyError, IndexError, ValueError, TypeError):
            problems.append(f"{key[1]}{quote['ptr']} (run {key[0]}) does not exist, yet the report prints {quote['text']!r}")
            continue
        printed = " ".join(html_lib.unescape(quote["text"]).split())
        expected = format_value(value, quote["style"]) if quote["kind"] == "q" else " ".join(str(value).split())
        if printed != expected:
            problems.append(f"{key[1]}{quote['ptr']} (run {key[0]}) holds {value!r}: expected {expected!r}, "
                            f"printed {printed!r}")
    # measures whose names hold a digit: F1 (macro-F1, micro-F1)
    free = re.sub(r"\bF1\b", "F-one", " ".join(" ".join(reader.free).split()))
    stray = [free[max(0, m.start() - 50): m.end() + 30] for m in re.finditer(r"\d", free)]
    assert not problems, "numbers that are not their files':\n" + "\n".join(problems[:20])
    assert not stray, "digits printed outside a quote of a file:\n" + "\n".join(dict.fromkeys(stray).keys())
    return {"numbers": sum(q["kind"] == "q" for q in reader.quotes),
            "sentences": sum(q["kind"] == "said" for q in reader.quotes),
            "sources": {q.get("src") for q in reader.quotes}}


def checklist_items(page: str) -> list[str]:
    """The item numbers in the checklist table, in order."""
    table = re.search(r'<table id="table-checklist".*?</table>', page, flags=re.S)
    assert table, "the report has no checklist table"
    return re.findall(r'<th scope="row"><span class="ref">([0-9]+[a-z]?)</span></th>', table.group(0))


def pdf_text(path: Path) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def render_first_pages(pdf: Path, name: str) -> list[Path]:
    """The PDF's first two pages as PNG in test-artifacts/report/ (for a person to look at)."""
    if shutil.which("pdftoppm") is None:
        return []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = ARTIFACTS / f"pdf-{name}"
    for old in ARTIFACTS.glob(f"pdf-{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "2", str(pdf), str(prefix)], check=True,
                   timeout=120)
    return sorted(ARTIFACTS.glob(f"pdf-{name}-*.png"))
