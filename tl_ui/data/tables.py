"""Tables: CSV/TSV/TXT and Excel files holding texts (or image paths) and their labels.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first example row 2.
"""
from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd

from .dataset import DataError, LabelledDataset
from .images import IMAGE_EXTENSIONS, inspect_images
from .limits import Limits, human_size
from .validate import Origin, check_classes, class_warnings, duplicate_warning, long_text_warning
from .wording import quoted_list, row_list, short
from .zips import zip_uncompressed_size

TEXT_TABLE_EXTENSIONS = frozenset({".csv", ".tsv", ".txt"})
EXCEL_EXTENSIONS = frozenset({".xlsx", ".xlsm"})
TABLE_EXTENSIONS = TEXT_TABLE_EXTENSIONS | EXCEL_EXTENSIONS

# Column names people use, best first. Names are compared lower-cased with punctuation as '_'.
TEXT_NAMES = ("text", "sentence", "review", "note", "comment", "snippet", "content", "body",
              "message", "description", "document", "abstract", "report", "tweet", "utterance",
              "question", "summary", "title")
LABEL_NAMES = ("label", "class", "category", "target", "y", "sentiment", "tag", "outcome",
               "diagnosis", "class_name", "label_name")
PATH_NAMES = ("path", "file", "filename", "file_name", "filepath", "file_path", "image",
              "image_path", "image_file", "img", "picture", "photo")
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


def is_image_table(table: Table, path_column: Optional[str], text_column: Optional[str]) -> bool:
    """A table listing image files (a path column) rather than texts."""
    if path_column:
        return True
    if text_column:
        return False
    return _find_path_column(table.frame) is not None


def load_text_table(table: Table, limits: Limits, *, text_column: Optional[str] = None,
                    label_column: Optional[str] = None) -> LabelledDataset:
    frame = table.frame
    _need_two_columns(table)
    text_col = _resolve_column(table, text_column, "text") if text_column else None
    label_col, label_guessed = _pick_label_column(table, label_column, exclude=(text_col,))
    text_guessed = False
    if text_col is None:
        text_col, text_guessed = _pick_text_column(table, exclude=(label_col,))
    if text_col == label_col:
        raise DataError(
            f"The text and the label of '{table.name}' cannot both come from column "
            f"'{text_col}'. Choose two different columns."
        )
    frame = _drop_blank_rows(frame, [text_col, label_col])
    _no_empty_cells(table, frame, text_col, "text")
    _no_empty_cells(table, frame, label_col, "label")

    texts = frame[text_col].tolist()
    labels = [_label(v) for v in frame[label_col]]
    rows = [int(i) + 2 for i in frame.index]
    origin = Origin(table.name, "table", label_column=label_col, rows=rows)
    check_classes(labels, origin, limits)

    shown = [f"row {r}" for r in rows]
    warnings = list(table.warnings)
    if label_guessed or text_guessed:
        warnings.append(
            f"Guessed from the contents that column '{text_col}' holds the text and '{label_col}' "
            "the label. If that is wrong, pick the columns by name."
        )
    warnings += class_warnings(labels)
    warnings += duplicate_warning([" ".join(t.split()) for t in texts], labels, shown, "text")
    warnings += long_text_warning(texts, shown)
    return LabelledDataset("text", texts, labels, table.name, warnings)


def load_image_table(table: Table, base: Path, limits: Limits, *, path_column: Optional[str] = None,
                     label_column: Optional[str] = None) -> LabelledDataset:
    """Images listed in a table, with paths relative to the table's folder `base`."""
    frame = table.frame
    _need_two_columns(table)
    path_col = (_resolve_column(table, path_column, "image path") if path_column
                else _find_path_column(frame))
    if path_col is None:
        raise DataError(
            f"The file '{table.name}' has no column of image file names. Name that column "
            f"'path' or pick it by name. Columns found: {quoted_list(frame.columns, 8)}."
        )
    label_col, _ = _pick_label_column(table, label_column, exclude=(path_col,))
    if label_col == path_col:
        raise DataError(
            f"The image paths and the labels of '{table.name}' cannot both come from column "
            f"'{path_col}'. Choose two different columns."
        )
    frame = _drop_blank_rows(frame, [path_col, label_col])
    _no_empty_cells(table, frame, path_col, "image path")
    _no_empty_cells(table, frame, label_col, "label")

    base = base.resolve()
    paths, outside, missing = [], [], []
    for index, value in frame[path_col].items():
        row = int(index) + 2
        # Windows users write 'images\\scan1.png'.
        candidate = Path(value.replace("\\", "/"))
        resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
        if not resolved.is_relative_to(base):
            outside.append((row, value))
        elif not resolved.is_file():
            missing.append((row, value))
        paths.append(resolved)
    if outside:
        raise DataError(
            f"{_rows_word(outside)} of '{table.name}' {_verb(outside, 'points', 'point')} outside "
            f"the table's folder ({_example(outside)}). Keep the images in the same folder as the table "
            "or a folder below it, and write their paths relative to the table (like "
            "'images/scan1.png')."
        )
    if missing:
        raise DataError(
            f"{_rows_word(missing)} of '{table.name}' "
            f"{_verb(missing, 'names an image file that does', 'name image files that do')} not exist "
            f"({_example(missing)}). Paths are read relative to the folder that holds "
            "the table: check the spelling, or upload one zip holding the table and the images."
        )

    labels = [_label(v) for v in frame[label_col]]
    rows = [int(i) + 2 for i in frame.index]
    check_classes(labels, Origin(table.name, "table", label_column=label_col, rows=rows), limits)
    shown = [short(v) for v in frame[path_col]]
    warnings = list(table.warnings) + class_warnings(labels)
    warnings += inspect_images(paths, shown, labels, table.name, limits)
    return LabelledDataset("image", [str(p) for p in paths], labels, table.name, warnings)


# -- reading --------------------------------------------------------------------------------

def _read_delimited(path: Path, limits: Limits) -> Table:
    raw = path.read_bytes()
    name = path.name
    if not raw.strip():
        raise DataError(
            f"The file '{name}' is empty. Save your table with a header row (for example "
            "'text,label') and one row per example, then upload it again."
        )
    text, warning = _decode(raw, name)
    delimiter = _guess_delimiter(text, path.suffix.lower())
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
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
                frame = book.parse(sheet, dtype=str, nrows=limits.max_rows + 1)
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


def _decode(raw: bytes, name: str) -> tuple[str, Optional[str]]:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):   # Excel's "Unicode text" export
        return raw.decode("utf-16"), None
    _refuse_binary(raw, name)
    try:
        return raw.decode("utf-8-sig"), None             # plain UTF-8, with or without a BOM
    except UnicodeDecodeError:
        pass
    for encoding, label in (("cp1252", "Windows (cp1252)"), ("latin-1", "Latin-1")):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return text, (
            f"'{name}' is not saved as UTF-8, so it was read as {label} text. Check that accented "
            "letters look right; if not, save the file again as 'CSV UTF-8' and upload it."
        )
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


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


# -- choosing columns -----------------------------------------------------------------------

def _need_two_columns(table: Table) -> None:
    columns = list(table.frame.columns)
    if len(columns) >= 2:
        return
    header = columns[0] if columns else ""
    hint = " Check that the header row names both columns, for example 'text,label'."
    for sep in _OTHER_SEPARATORS + _DELIMITERS:
        if sep in header:
            hint = (f" It looks like it uses '{sep}' between columns; save it as CSV with "
                    "commas (or as TSV with tabs) and upload it again.")
            break
    raise DataError(
        f"The file '{table.name}' has only one column ('{short(header)}'). Transfer Lab needs "
        f"two: one with the text (or image file name) and one with the label.{hint}"
    )


def _resolve_column(table: Table, wanted: str, role: str) -> str:
    columns = list(table.frame.columns)
    if wanted in columns:
        return wanted
    loose = {_norm(c): c for c in columns}
    if _norm(wanted) in loose:
        return loose[_norm(wanted)]
    raise DataError(
        f"The file '{table.name}' has no column named '{short(wanted)}' (asked for as the "
        f"{role}). Its columns are: {quoted_list(columns, 8)}."
    )


def _pick_label_column(table: Table, wanted: Optional[str], exclude) -> tuple[str, bool]:
    """(column, guessed): by the name asked for, by a usual name, else guessed from contents."""
    if wanted:
        return _resolve_column(table, wanted, "label"), False
    frame = table.frame
    candidates = [c for c in frame.columns if c not in exclude]
    by_name = _by_name(candidates, LABEL_NAMES)
    if by_name:
        return by_name, False
    # Otherwise: the column with the fewest distinct values (at least two, and repeated).
    n = max(len(frame), 1)
    scored = []
    for position, column in enumerate(candidates):
        if _by_name([column], TEXT_NAMES) or _by_name([column], PATH_NAMES):
            continue
        distinct = frame[column][frame[column] != ""].nunique()
        if 2 <= distinct <= max(2, n // 2):
            scored.append((distinct, -position, column))
    if scored:
        return min(scored)[2], True
    remaining = [c for c in candidates if not _by_name([c], TEXT_NAMES)]
    if len(frame.columns) == 2 and len(remaining) == 1 and frame[remaining[0]].nunique() < 2:
        return remaining[0], True   # one value throughout: the class check explains that better
    raise DataError(
        f"The file '{table.name}' has no column that looks like a label (a column with a few "
        "repeated values, such as 'positive'/'negative'). Name that column 'label' or pick it "
        f"by name. Columns found: {quoted_list(frame.columns, 8)}."
    )


def _pick_text_column(table: Table, exclude) -> tuple[str, bool]:
    frame = table.frame
    candidates = [c for c in frame.columns if c not in exclude]
    by_name = _by_name(candidates, TEXT_NAMES)
    if by_name:
        return by_name, False
    # Otherwise: the non-numeric column with the longest texts on average.
    scored = []
    for column in candidates:
        values = frame[column][frame[column] != ""]
        if values.empty or values.map(_is_number).all():
            continue
        scored.append((values.str.len().mean(), column))
    if scored:
        return max(scored)[1], True
    raise DataError(
        f"The file '{table.name}' has no column that looks like text. Name the column that holds "
        f"the texts 'text' or pick it by name. Columns found: {quoted_list(frame.columns, 8)}."
    )


def _find_path_column(frame: pd.DataFrame) -> Optional[str]:
    for column in frame.columns:
        values = frame[column][frame[column] != ""]
        if values.empty:
            continue
        is_image = values.map(lambda v: Path(v.strip()).suffix.lower() in IMAGE_EXTENSIONS)
        if is_image.mean() >= 0.8:
            return column
    return None


def _by_name(columns, names: tuple[str, ...]) -> Optional[str]:
    """The column whose name matches the earliest of `names` (whole name, then one word of it)."""
    normed = {c: _norm(c) for c in columns}
    for wanted in names:
        for column, norm in normed.items():
            if norm == wanted or norm == wanted + "s":
                return column
    for wanted in names:
        if len(wanted) < 3:
            continue
        for column, norm in normed.items():
            if wanted in norm.split("_"):
                return column
    return None


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


# -- cells and rows -------------------------------------------------------------------------

def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _label(value: str) -> str:
    # Spreadsheets turn 1 into 1.0; "1" and "1.0" are the same label.
    return re.sub(r"^(-?\d+)\.0+$", r"\1", value.strip())


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _drop_blank_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Rows empty in all the columns used (blank lines, trailing rows) are not examples."""
    blank = (frame[columns] == "").all(axis=1)
    return frame[~blank]


def _no_empty_cells(table: Table, frame: pd.DataFrame, column: str, role: str) -> None:
    empty = [int(i) + 2 for i in frame.index[frame[column] == ""]]
    if empty:
        raise DataError(
            f"{'Row' if len(empty) == 1 else 'Rows'} {row_list(empty)} of '{table.name}' "
            f"{'has' if len(empty) == 1 else 'have'} an empty {role} (column '{column}'). "
            f"Fill {'it' if len(empty) == 1 else 'them'} in or delete "
            f"{'that row' if len(empty) == 1 else 'those rows'}, then upload again."
        )


def _verb(rows: list, one: str, many: str) -> str:
    return one if len(rows) == 1 else many


def _example(rows: list[tuple[int, str]]) -> str:
    return ("" if len(rows) == 1 else "e.g. ") + f"'{short(rows[0][1])}'"


def _rows_word(rows: list[tuple[int, str]]) -> str:
    numbers = [r for r, _ in rows]
    return f"{'Row' if len(numbers) == 1 else 'Rows'} {row_list(numbers)}"


