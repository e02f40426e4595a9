"""Multi-label tables whose labels are several 0/1 columns, one per label (`label_columns`)."""
from __future__ import annotations

from typing import Optional

from .dataset import DataError, LabelledDataset
from .limits import Limits
from .multilabel import Labels, read_zero_one_columns
from .table_columns import drop_blank_rows, no_empty_cells, pick_text_column, resolve_column, with_groups
from .table_read import Table
from .validate import duplicate_warning, long_text_warning


def parse_label_columns(table: Table, label_columns: str | list) -> list[str]:
    """'a, b,c' (or a list) -> the table's column names, each checked to exist."""
    wanted = label_columns if isinstance(label_columns, (list, tuple)) else str(label_columns).split(",")
    names = [str(w).strip() for w in wanted if str(w).strip()]
    columns = list(dict.fromkeys(resolve_column(table, name, "label") for name in names))
    if len(columns) < 2:
        raise DataError(f"Choose at least two label columns (0/1 columns, one per label) in '{table.name}', "
                        "separated by commas, e.g. 'billing,outage'. For one label column, choose it as the "
                        "label column instead.")
    return columns


def read_columns(table: Table, frame, label_columns, limits: Limits) -> tuple[list[str], Labels]:
    columns = parse_label_columns(table, label_columns)
    rows = [int(i) + 2 for i in frame.index]
    return columns, read_zero_one_columns(table.name, frame, columns, rows, limits)


def load_text_columns(table: Table, limits: Limits, *, text_column: Optional[str], label_columns,
                      group_column: Optional[str]) -> LabelledDataset:
    columns = parse_label_columns(table, label_columns)
    group_col = resolve_column(table, group_column, "group") if group_column else None
    if text_column:
        text_col, guessed = resolve_column(table, text_column, "text"), False
    else:
        text_col, guessed = pick_text_column(table, exclude=(*columns, group_col))
    if text_col in columns:
        raise DataError(f"The column '{text_col}' of '{table.name}' cannot be both the text and a label column. "
                        "Choose the text column and the 0/1 label columns separately.")
    frame = drop_blank_rows(table.frame, [text_col, *columns])
    no_empty_cells(table, frame, text_col, "text")
    _, labels = read_columns(table, frame, columns, limits)
    texts = frame[text_col].tolist()
    shown = [f"row {int(i) + 2}" for i in frame.index]
    warnings = list(table.warnings)
    if guessed:
        warnings.append(f"Guessed from the contents that column '{text_col}' holds the text. If that is wrong, "
                        "pick the text column by name.")
    warnings += labels.warnings
    warnings += duplicate_warning([" ".join(t.split()) for t in texts], labels.shown(), shown, "text")
    warnings += long_text_warning(texts, shown)
    dataset = LabelledDataset("text", texts, labels.shown(), table.name, warnings, label_sets=labels.sets,
                              label_names=labels.names, label_source=labels.source)
    return with_groups(dataset, frame, group_col, (text_col, *columns))
