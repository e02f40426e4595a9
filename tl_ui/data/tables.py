"""Tables: CSV/TSV/TXT and Excel files holding texts (or image paths) and their labels.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first example row 2.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pandas as pd

from .dataset import DataError, LabelledDataset
from .images import IMAGE_EXTENSIONS, inspect_images
from .limits import Limits
from .multilabel import read_label_column
from .multilabel_tables import parse_label_columns, read_columns
from .table_read import _DELIMITERS, _OTHER_SEPARATORS, TABLE_EXTENSIONS, Table, read_table  # noqa: F401
from .validate import Origin, check_classes, class_warnings, duplicate_warning, long_text_warning
from .wording import quoted_list, row_list, short


# Column names people use, best first. Names are compared lower-cased with punctuation as '_'.
TEXT_NAMES = ("text", "sentence", "review", "note", "comment", "snippet", "content", "body",
              "message", "description", "document", "abstract", "report", "tweet", "utterance",
              "question", "summary", "title")
LABEL_NAMES = ("label", "class", "category", "target", "y", "sentiment", "tag", "outcome",
               "diagnosis", "class_name", "label_name")
PATH_NAMES = ("path", "file", "filename", "file_name", "filepath", "file_path", "image",
              "image_path", "image_file", "img", "picture", "photo")


def is_image_table(table: Table, path_column: Optional[str], text_column: Optional[str]) -> bool:
    """A table listing image files (a path column) rather than texts."""
    if path_column:
        return True
    if text_column:
        return False
    return _find_path_column(table.frame) is not None


def load_text_table(table: Table, limits: Limits, *, text_column: Optional[str] = None,
                    label_column: Optional[str] = None, group_column: Optional[str] = None,
                    label_columns: Optional[str] = None, label_separator: Optional[str] = None) -> LabelledDataset:
    frame = table.frame
    _need_two_columns(table)
    if label_columns:   # several 0/1 columns, one per label (multi-label)
        from .multilabel_tables import load_text_columns

        return load_text_columns(table, limits, text_column=text_column, label_columns=label_columns,
                                 group_column=group_column)
    group_col = _resolve_column(table, group_column, "group") if group_column else None
    text_col = _resolve_column(table, text_column, "text") if text_column else None
    label_col, label_guessed = _pick_label_column(table, label_column, exclude=(text_col, group_col))
    text_guessed = False
    if text_col is None:
        text_col, text_guessed = _pick_text_column(table, exclude=(label_col, group_col))
    if text_col == label_col:
        raise DataError(
            f"The text and the label of '{table.name}' cannot both come from column "
            f"'{text_col}'. Choose two different columns."
        )
    frame = _drop_blank_rows(frame, [text_col, label_col])
    _no_empty_cells(table, frame, text_col, "text")
    rows = [int(i) + 2 for i in frame.index]
    multi, notes = read_label_column(table.name, frame[label_col].tolist(), rows, label_col, label_separator, limits)
    if multi is None:
        _no_empty_cells(table, frame, label_col, "label")

    texts = frame[text_col].tolist()
    labels = multi.shown() if multi else [_label(v) for v in frame[label_col]]
    if multi is None:
        check_classes(labels, Origin(table.name, "table", label_column=label_col, rows=rows), limits)

    shown = [f"row {r}" for r in rows]
    warnings = list(table.warnings) + notes
    if label_guessed or text_guessed:
        warnings.append(
            f"Guessed from the contents that column '{text_col}' holds the text and '{label_col}' "
            "the label. If that is wrong, pick the columns by name."
        )
    warnings += multi.warnings if multi else class_warnings(labels)
    warnings += duplicate_warning([" ".join(t.split()) for t in texts], labels, shown, "text")
    warnings += long_text_warning(texts, shown)
    dataset = LabelledDataset("text", texts, labels, table.name, warnings)
    if multi:
        dataset.label_sets, dataset.label_names, dataset.label_source = multi.sets, multi.names, multi.source
    return _with_groups(dataset, frame, group_col, (text_col, label_col))


def load_image_table(table: Table, base: Path, limits: Limits, *, path_column: Optional[str] = None,
                     label_column: Optional[str] = None, group_column: Optional[str] = None,
                     label_columns: Optional[str] = None, label_separator: Optional[str] = None) -> LabelledDataset:
    """Images listed in a table, with paths relative to the table's folder `base`."""
    frame = table.frame
    _need_two_columns(table)
    group_col = _resolve_column(table, group_column, "group") if group_column else None
    path_col = (_resolve_column(table, path_column, "image path") if path_column
                else _find_path_column(frame))
    if path_col is None:
        raise DataError(
            f"The file '{table.name}' has no column of image file names. Name that column "
            f"'path' or pick it by name. Columns found: {quoted_list(frame.columns, 8)}."
        )
    multi_cols = parse_label_columns(table, label_columns) if label_columns else None   # 0/1 columns
    label_col = None if multi_cols else _pick_label_column(table, label_column, exclude=(path_col, group_col))[0]
    if label_col == path_col or path_col in (multi_cols or ()):
        raise DataError(
            f"The image paths and the labels of '{table.name}' cannot both come from column "
            f"'{path_col}'. Choose two different columns."
        )
    frame = _drop_blank_rows(frame, [path_col, *(multi_cols or [label_col])])
    _no_empty_cells(table, frame, path_col, "image path")
    rows = [int(i) + 2 for i in frame.index]
    multi, notes = ((read_columns(table, frame, multi_cols, limits)[1], []) if multi_cols else
                    read_label_column(table.name, frame[label_col].tolist(), rows, label_col, label_separator, limits))
    if multi is None:
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

    labels = multi.shown() if multi else [_label(v) for v in frame[label_col]]
    if multi is None:
        check_classes(labels, Origin(table.name, "table", label_column=label_col, rows=rows), limits)
    shown = [short(v) for v in frame[path_col]]
    warnings = list(table.warnings) + notes + (multi.warnings if multi else class_warnings(labels))
    warnings += inspect_images(paths, shown, labels, table.name, limits)
    dataset = LabelledDataset("image", [str(p) for p in paths], labels, table.name, warnings)
    if multi:
        dataset.label_sets, dataset.label_names, dataset.label_source = multi.sets, multi.names, multi.source
    return _with_groups(dataset, frame, group_col, (path_col, label_col, *(multi_cols or ())))


NO_GROUP = "(no group)"


def _with_groups(dataset: LabelledDataset, frame: pd.DataFrame, group_col: Optional[str],
                 used: tuple) -> LabelledDataset:
    """Attach the chosen group column (site, scanner, source...) to the kept rows."""
    if not group_col:
        return dataset
    if group_col in used:
        raise DataError(f"The group column '{group_col}' is also the text, image or label column. "
                        "Choose a different column for the groups (e.g. site or scanner).")
    groups = [value or NO_GROUP for value in frame[group_col].tolist()]
    dataset.groups, dataset.group_column = groups, group_col
    if groups.count(NO_GROUP):
        dataset.warnings.append(f"{groups.count(NO_GROUP)} rows have no value in the group column "
                                f"'{group_col}'; they are counted as the group '{NO_GROUP}'.")
    return dataset


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


