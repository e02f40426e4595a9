"""Tables: CSV/TSV/TXT and Excel files holding texts (or image paths) and their labels.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first example row 2.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .dataset import DataError, LabelledDataset
from .images import inspect_images
from .limits import Limits
from .multilabel import read_label_column
from .multilabel_tables import parse_label_columns, read_columns
from .table_columns import (drop_blank_rows, example, find_path_column, label_value, need_two_columns, no_empty_cells,
                            pick_label_column, pick_text_column, resolve_column, rows_word, verb, with_groups)
from .table_read import _DELIMITERS, _OTHER_SEPARATORS, TABLE_EXTENSIONS, Table, read_table  # noqa: F401
from .validate import Origin, check_classes, class_warnings, duplicate_warning, long_text_warning
from .wording import quoted_list, short


def is_image_table(table: Table, path_column: Optional[str], text_column: Optional[str]) -> bool:
    """A table listing image files (a path column) rather than texts."""
    if path_column:
        return True
    if text_column:
        return False
    return find_path_column(table.frame) is not None


def load_text_table(table: Table, limits: Limits, *, text_column: Optional[str] = None,
                    label_column: Optional[str] = None, group_column: Optional[str] = None,
                    label_columns: Optional[str] = None, label_separator: Optional[str] = None) -> LabelledDataset:
    frame = table.frame
    need_two_columns(table)
    if label_columns:   # several 0/1 columns, one per label (multi-label)
        from .multilabel_tables import load_text_columns

        return load_text_columns(table, limits, text_column=text_column, label_columns=label_columns,
                                 group_column=group_column)
    group_col = resolve_column(table, group_column, "group") if group_column else None
    text_col = resolve_column(table, text_column, "text") if text_column else None
    label_col, label_guessed = pick_label_column(table, label_column, exclude=(text_col, group_col))
    text_guessed = False
    if text_col is None:
        text_col, text_guessed = pick_text_column(table, exclude=(label_col, group_col))
    if text_col == label_col:
        raise DataError(
            f"The text and the label of '{table.name}' cannot both come from column "
            f"'{text_col}'. Choose two different columns."
        )
    frame = drop_blank_rows(frame, [text_col, label_col])
    no_empty_cells(table, frame, text_col, "text")
    rows = [int(i) + 2 for i in frame.index]
    multi, notes = read_label_column(table.name, frame[label_col].tolist(), rows, label_col, label_separator, limits)
    if multi is None:
        no_empty_cells(table, frame, label_col, "label")

    texts = frame[text_col].tolist()
    labels = multi.shown() if multi else [label_value(v) for v in frame[label_col]]
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
    return with_groups(dataset, frame, group_col, (text_col, label_col))


def load_image_table(table: Table, base: Path, limits: Limits, *, path_column: Optional[str] = None,
                     label_column: Optional[str] = None, group_column: Optional[str] = None,
                     label_columns: Optional[str] = None, label_separator: Optional[str] = None) -> LabelledDataset:
    """Images listed in a table, with paths relative to the table's folder `base`."""
    frame = table.frame
    need_two_columns(table)
    group_col = resolve_column(table, group_column, "group") if group_column else None
    path_col = (resolve_column(table, path_column, "image path") if path_column
                else find_path_column(frame))
    if path_col is None:
        raise DataError(
            f"The file '{table.name}' has no column of image file names. Name that column "
            f"'path' or pick it by name. Columns found: {quoted_list(frame.columns, 8)}."
        )
    multi_cols = parse_label_columns(table, label_columns) if label_columns else None   # 0/1 columns
    label_col = None if multi_cols else pick_label_column(table, label_column, exclude=(path_col, group_col))[0]
    if label_col == path_col or path_col in (multi_cols or ()):
        raise DataError(
            f"The image paths and the labels of '{table.name}' cannot both come from column "
            f"'{path_col}'. Choose two different columns."
        )
    frame = drop_blank_rows(frame, [path_col, *(multi_cols or [label_col])])
    no_empty_cells(table, frame, path_col, "image path")
    rows = [int(i) + 2 for i in frame.index]
    multi, notes = ((read_columns(table, frame, multi_cols, limits)[1], []) if multi_cols else
                    read_label_column(table.name, frame[label_col].tolist(), rows, label_col, label_separator, limits))
    if multi is None:
        no_empty_cells(table, frame, label_col, "label")

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
            f"{rows_word(outside)} of '{table.name}' {verb(outside, 'points', 'point')} outside "
            f"the table's folder ({example(outside)}). Keep the images in the same folder as the table "
            "or a folder below it, and write their paths relative to the table (like "
            "'images/scan1.png')."
        )
    if missing:
        raise DataError(
            f"{rows_word(missing)} of '{table.name}' "
            f"{verb(missing, 'names an image file that does', 'name image files that do')} not exist "
            f"({example(missing)}). Paths are read relative to the folder that holds "
            "the table: check the spelling, or upload one zip holding the table and the images."
        )

    labels = multi.shown() if multi else [label_value(v) for v in frame[label_col]]
    if multi is None:
        check_classes(labels, Origin(table.name, "table", label_column=label_col, rows=rows), limits)
    shown = [short(v) for v in frame[path_col]]
    warnings = list(table.warnings) + notes + (multi.warnings if multi else class_warnings(labels))
    warnings += inspect_images(paths, shown, labels, table.name, limits)
    dataset = LabelledDataset("image", [str(p) for p in paths], labels, table.name, warnings)
    if multi:
        dataset.label_sets, dataset.label_names, dataset.label_source = multi.sets, multi.names, multi.source
    return with_groups(dataset, frame, group_col, (path_col, label_col, *(multi_cols or ())))
