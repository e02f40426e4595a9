"""Choosing a table's columns (by the name asked for, by a usual name, or guessed from the contents)
and checking their cells: shared by single-label tables (tables.py) and multi-label ones
(multilabel_tables.py). Rows are numbered as a spreadsheet shows them (header row 1)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pandas as pd

from .dataset import DataError, LabelledDataset
from .images import IMAGE_EXTENSIONS
from .table_read import _DELIMITERS, _OTHER_SEPARATORS, Table
from .wording import quoted_list, row_list, short

# Column names people use, best first. Names are compared lower-cased with punctuation as '_'.
TEXT_NAMES = ("text", "sentence", "review", "note", "comment", "snippet", "content", "body",
              "message", "description", "document", "abstract", "report", "tweet", "utterance",
              "question", "summary", "title")
LABEL_NAMES = ("label", "class", "category", "target", "y", "sentiment", "tag", "outcome",
               "diagnosis", "class_name", "label_name")
PATH_NAMES = ("path", "file", "filename", "file_name", "filepath", "file_path", "image",
              "image_path", "image_file", "img", "picture", "photo")


NO_GROUP = "(no group)"


def with_groups(dataset: LabelledDataset, frame: pd.DataFrame, group_col: Optional[str],
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

def need_two_columns(table: Table) -> None:
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


def resolve_column(table: Table, wanted: str, role: str) -> str:
    columns = list(table.frame.columns)
    if wanted in columns:
        return wanted
    loose = {normalised_name(c): c for c in columns}
    if normalised_name(wanted) in loose:
        return loose[normalised_name(wanted)]
    raise DataError(
        f"The file '{table.name}' has no column named '{short(wanted)}' (asked for as the "
        f"{role}). Its columns are: {quoted_list(columns, 8)}."
    )


def pick_label_column(table: Table, wanted: Optional[str], exclude) -> tuple[str, bool]:
    """(column, guessed): by the name asked for, by a usual name, else guessed from contents."""
    if wanted:
        return resolve_column(table, wanted, "label"), False
    frame = table.frame
    candidates = [c for c in frame.columns if c not in exclude]
    by_name = column_named(candidates, LABEL_NAMES)
    if by_name:
        return by_name, False
    # Otherwise: the column with the fewest distinct values (at least two, and repeated).
    n = max(len(frame), 1)
    scored = []
    for position, column in enumerate(candidates):
        if column_named([column], TEXT_NAMES) or column_named([column], PATH_NAMES):
            continue
        distinct = frame[column][frame[column] != ""].nunique()
        if 2 <= distinct <= max(2, n // 2):
            scored.append((distinct, -position, column))
    if scored:
        return min(scored)[2], True
    remaining = [c for c in candidates if not column_named([c], TEXT_NAMES)]
    if len(frame.columns) == 2 and len(remaining) == 1 and frame[remaining[0]].nunique() < 2:
        return remaining[0], True   # one value throughout: the class check explains that better
    raise DataError(
        f"The file '{table.name}' has no column that looks like a label (a column with a few "
        "repeated values, such as 'positive'/'negative'). Name that column 'label' or pick it "
        f"by name. Columns found: {quoted_list(frame.columns, 8)}."
    )


def pick_text_column(table: Table, exclude) -> tuple[str, bool]:
    frame = table.frame
    candidates = [c for c in frame.columns if c not in exclude]
    by_name = column_named(candidates, TEXT_NAMES)
    if by_name:
        return by_name, False
    # Otherwise: the non-numeric column with the longest texts on average.
    scored = []
    for column in candidates:
        values = frame[column][frame[column] != ""]
        if values.empty or values.map(is_number).all():
            continue
        scored.append((values.str.len().mean(), column))
    if scored:
        return max(scored)[1], True
    raise DataError(
        f"The file '{table.name}' has no column that looks like text. Name the column that holds "
        f"the texts 'text' or pick it by name. Columns found: {quoted_list(frame.columns, 8)}."
    )


def find_path_column(frame: pd.DataFrame) -> Optional[str]:
    for column in frame.columns:
        values = frame[column][frame[column] != ""]
        if values.empty:
            continue
        is_image = values.map(lambda v: Path(v.strip()).suffix.lower() in IMAGE_EXTENSIONS)
        if is_image.mean() >= 0.8:
            return column
    return None


def column_named(columns, names: tuple[str, ...]) -> Optional[str]:
    """The column whose name matches the earliest of `names` (whole name, then one word of it)."""
    normed = {c: normalised_name(c) for c in columns}
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


def normalised_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


# -- cells and rows -------------------------------------------------------------------------

def label_value(value: str) -> str:
    # Spreadsheets turn 1 into 1.0; "1" and "1.0" are the same label.
    return re.sub(r"^(-?\d+)\.0+$", r"\1", value.strip())


def is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def drop_blank_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Rows empty in all the columns used (blank lines, trailing rows) are not examples."""
    blank = (frame[columns] == "").all(axis=1)
    return frame[~blank]


def no_empty_cells(table: Table, frame: pd.DataFrame, column: str, role: str) -> None:
    empty = [int(i) + 2 for i in frame.index[frame[column] == ""]]
    if empty:
        raise DataError(
            f"{'Row' if len(empty) == 1 else 'Rows'} {row_list(empty)} of '{table.name}' "
            f"{'has' if len(empty) == 1 else 'have'} an empty {role} (column '{column}'). "
            f"Fill {'it' if len(empty) == 1 else 'them'} in or delete "
            f"{'that row' if len(empty) == 1 else 'those rows'}, then upload again."
        )


def verb(rows: list, one: str, many: str) -> str:
    return one if len(rows) == 1 else many


def example(rows: list[tuple[int, str]]) -> str:
    return ("" if len(rows) == 1 else "e.g. ") + f"'{short(rows[0][1])}'"


def rows_word(rows: list[tuple[int, str]]) -> str:
    numbers = [r for r, _ in rows]
    return f"{'Row' if len(numbers) == 1 else 'Rows'} {row_list(numbers)}"


