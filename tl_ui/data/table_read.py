"""Reading tables: CSV/TSV/TXT (encoding, separator and quoting detected, with row-precise
messages) and Excel files, into a `Table` of stripped strings."""
from __future__ import annotations

import codecs
import csv
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd

from .dataset import DataError
from .limits import Limits, human_size
from .zips import zip_uncompressed_size

TEXT_TABLE_EXTENSIONS = frozenset({".csv", ".tsv", ".txt"})
EXCEL_EXTENSIONS = frozenset({".xlsx", ".xlsm"})
TABLE_EXTENSIONS = TEXT_TABLE_EXTENSIONS | EXCEL_EXTENSIONS
_DELIMITERS = ",;\t|"
_OTHER_SEPARATORS = ":#~^"


@dataclass
class Table:
    frame: pd.DataFrame                       # every cell a stripped string ("" when empty)
    name: str                                 # base name of the file
    warnings: list[str] = field(default_factory=list)


def read_table(path: Path, limits: Limits) -> Table:
    """Read a CSV/TSV/TXT or Excel file into a Table of strings, or raise DataError."""
    if path.suffix.lower() in EXCEL_EXTENSIONS:
        table = _read_excel(path, limits)
    else:
        table = _read_delimited(path, limits)
    frame = table.frame
    if len(frame) > limits.max_rows:
        raise DataError(
            f"The file '{path.name}' has more than {limits.max_rows:,} rows; Transfer Lab "
            "accepts at most that many. Use a smaller selection of rows."
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    table.frame = frame.map(_cell)
    if table.frame.empty:
        raise DataError(
            f"The file '{path.name}' has column names but no rows of data. Add one row per "
            "example (the text and its label) below the header row."
        )
    return table


# -- reading --------------------------------------------------------------------------------

SNIFF_BYTES = 64 * 1024   # encoding hints and the separator come from the start of the file


def _read_delimited(path: Path, limits: Limits) -> Table:
    """pandas reads the file itself (memory in proportion to the table, not copies of its text);
    the separator is sniffed from the first 64 KB and the encoding checked in a streaming pass."""
    name = path.name
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head.strip():
        raise DataError(
            f"The file '{name}' is empty. Save your table with a header row (for example "
            "'text,label') and one row per example, then upload it again."
        )
    encoding, warning = _encoding_of(path, head, name)
    text_head = head.decode(encoding, errors="ignore")
    if len(head) == SNIFF_BYTES:  # drop a last line cut in the middle
        text_head = text_head[: text_head.rfind("\n") + 1] or text_head
    delimiter = _guess_delimiter(text_head, path.suffix.lower())
    try:
        frame = pd.read_csv(
            path, sep=delimiter, dtype=str, keep_default_na=False, encoding=encoding,
            skip_blank_lines=False, nrows=limits.max_rows + 1,
        )
    except pd.errors.EmptyDataError:
        raise DataError(
            f"The file '{name}' is empty. Save your table with a header row (for example "
            "'text,label') and one row per example, then upload it again."
        ) from None
    except pd.errors.ParserError as exc:
        raise _parse_error(name, str(exc), delimiter) from None
    return Table(frame, name, [warning] if warning else [])


def _encoding_of(path: Path, head: bytes, name: str) -> tuple[str, Optional[str]]:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):   # Excel's "Unicode text" export
        return "utf-16", None
    _refuse_binary(head, name)
    if _decodes(path, "utf-8-sig"):                     # plain UTF-8, with or without a BOM
        return "utf-8-sig", None
    for encoding, label in (("cp1252", "Windows (cp1252)"), ("latin-1", "Latin-1")):
        if _decodes(path, encoding):
            return encoding, (
                f"'{name}' is not saved as UTF-8, so it was read as {label} text. Check that accented "
                "letters look right; if not, save the file again as 'CSV UTF-8' and upload it."
            )
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read_excel(path: Path, limits: Limits) -> Table:
    name = path.name
    not_excel = DataError(
        f"The file '{name}' could not be opened as an Excel workbook (it may be damaged or "
        "saved in another format). Open it in your spreadsheet program, save it again as "
        "'Excel Workbook (.xlsx)' or 'CSV', and upload that."
    )
    # An .xlsx is a zip of XML files: bound what the reader would unpack before it runs.
    try:
        unpacked = zip_uncompressed_size(path, limits)
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        raise not_excel from None
    if unpacked > limits.max_uncompressed_bytes:
        raise DataError(
            f"The workbook '{name}' would unpack to {human_size(unpacked)}, more than Transfer Lab "
            f"accepts ({human_size(limits.max_uncompressed_bytes)}). Save the sheet you need as "
            "CSV and upload that."
        )
    warnings = []
    try:
        with pd.ExcelFile(path, engine="openpyxl") as book:
            frame, used = None, None
            for sheet in book.sheet_names:
                frame = pd.read_excel(book, sheet_name=sheet, dtype=str, nrows=limits.max_rows + 1)
                if not frame.empty or len(frame.columns):
                    used = sheet
                    break
            if used is not None and len(book.sheet_names) > 1:
                warnings.append(
                    f"Read the sheet '{used}' of '{name}'; the workbook's other sheets were ignored."
                )
    except DataError:
        raise
    except Exception:  # openpyxl raises many types on damaged or foreign files
        raise not_excel from None
    if frame is None or (frame.empty and not len(frame.columns)):
        raise DataError(
            f"The workbook '{name}' is empty. Put a header row (for example 'text' and 'label') "
            "and one row per example in its first sheet, then upload it again."
        )
    return Table(frame, name, warnings)


_MAGIC_HINTS = (
    (b"PK\x03\x04", "an Excel workbook or a zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) or Word file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


def _refuse_binary(raw: bytes, name: str) -> None:
    hint = next((what for magic, what in _MAGIC_HINTS if raw.startswith(magic)), None)
    if hint is None and b"\x00" not in raw[:65536]:
        return
    looks = f"it looks like {hint}" if hint else "it contains binary data"
    raise DataError(
        f"The file '{name}' is not a text table, although its name ends in "
        f"'{Path(name).suffix}': {looks}. Open it in your spreadsheet program and use "
        "'Save As' > 'CSV', or upload an Excel file with its own .xlsx name."
    )


def _guess_delimiter(text: str, suffix: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][:50]
    header = lines[0] if lines else ""
    if suffix == ".tsv" or (suffix == ".txt" and "\t" in header):
        return "\t"
    present = [d for d in _DELIMITERS if d in header]
    if len(present) == 1:
        return present[0]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(present) or _DELIMITERS).delimiter
    except csv.Error:
        return max(present, key=header.count) if present else ","


def _parse_error(name: str, message: str, delimiter: str) -> DataError:
    shown = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "'|'"}[delimiter]
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if fields:
        expected, row, saw = fields.groups()
        return DataError(
            f"Row {row} of '{name}' has {saw} cells but the header row has {expected} "
            f"(cells are separated by a {shown}). If your texts contain the {shown} character, "
            "put each text in double quotes (spreadsheet programs do this when saving as CSV)."
        )
    quote = re.search(r"EOF inside string starting at row (\d+)", message)
    if quote:
        return DataError(
            f"Row {int(quote.group(1)) + 1} of '{name}' opens a double quote (\") that is never "
            "closed. Fix or remove the quote, or save the file again from your spreadsheet program."
        )
    return DataError(
        f"The file '{name}' could not be read as a table. Save it again from your spreadsheet "
        "program as CSV (comma-separated) and upload it."
    )


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()
