"""`load_dataset`: turn whatever the user gave us into a validated LabelledDataset."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .dataset import DataError, LabelledDataset
from .images import (IMAGE_EXTENSIONS, descend_single_folder, is_image_file, load_image_folders,
                     visible_children)
from .limits import Limits, human_size
from .tables import (TABLE_EXTENSIONS, is_image_table, load_image_table, load_text_table,
                     read_table)
from .validate import Origin
from .zips import extract_zip


def load_dataset(path: str | Path, workdir: str | Path, *, text_column: Optional[str] = None,
                 label_column: Optional[str] = None, path_column: Optional[str] = None,
                 group_column: Optional[str] = None, limits: Optional[Limits] = None,
                 label_columns: Optional[str] = None, label_separator: Optional[str] = None) -> LabelledDataset:
    """Read and check an upload: a zip or folder of class folders, or a CSV/TSV/TXT/XLSX table.

    Anything unpacked goes into `workdir` (created if missing) and nowhere else. Raises
    DataError with a message for the user when the input cannot be used.
    """
    limits = limits or Limits()
    path = Path(path)
    name = path.name or str(path)
    columns = dict(text_column=text_column, label_column=label_column, path_column=path_column,
                   group_column=group_column, label_columns=label_columns or None,
                   label_separator=label_separator or None)
    if not path.exists():
        raise DataError(f"Could not find '{name}'. Check that the file or folder exists and try again.")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if path.is_dir():
            return _load_tree(path, Origin(name, "folder"), limits, columns)
        size = path.stat().st_size
        if size > limits.max_upload_bytes:
            raise DataError(
                f"The file '{name}' is {human_size(size)}; Transfer Lab accepts uploads up to "
                f"{human_size(limits.max_upload_bytes)}. Upload fewer or smaller images, or fewer rows."
            )
        if size == 0:
            raise DataError(f"The file '{name}' is empty (0 bytes). Check that it saved correctly "
                            "and upload it again.")
        suffix = path.suffix.lower()
        if suffix == ".zip":
            root = extract_zip(path, workdir, limits)
            return _load_tree(root, Origin(name, "zip"), limits, columns)
        if suffix in TABLE_EXTENSIONS:
            return _load_table(path, limits, columns)
        raise _unsupported(name, suffix, is_image_file(path))
    except PermissionError:
        raise DataError(f"Transfer Lab is not allowed to read '{name}'. Check the file's "
                        "permissions, or copy it somewhere else and try again.") from None


def _load_tree(root: Path, origin: Origin, limits: Limits, columns: dict) -> LabelledDataset:
    """A folder (or unpacked zip): class folders, or one table that lists images or texts."""
    top = descend_single_folder(root)
    subdirs, files = visible_children(top)
    tables = [f for f in files if f.suffix.lower() in TABLE_EXTENSIONS]
    if len(tables) == 1:
        try:
            table = read_table(tables[0], limits)
        except DataError:
            if not subdirs:
                raise
            # A stray notes file beside class folders: the folders are the data.
            return load_image_folders(top, origin, limits, shown_from=root)
        if is_image_table(table, columns["path_column"], columns["text_column"]):
            return load_image_table(table, tables[0].parent, limits,
                                    path_column=columns["path_column"],
                                    **_label_options(columns))
        if not subdirs:
            return load_text_table(table, limits, text_column=columns["text_column"],
                                   **_label_options(columns))
    _no_groups_for_folders(columns)
    return load_image_folders(top, origin, limits, shown_from=root)


def _load_table(path: Path, limits: Limits, columns: dict) -> LabelledDataset:
    table = read_table(path, limits)
    if is_image_table(table, columns["path_column"], columns["text_column"]):
        return load_image_table(table, path.parent, limits, path_column=columns["path_column"],
                                **_label_options(columns))
    return load_text_table(table, limits, text_column=columns["text_column"],
                           **_label_options(columns))


DATASET_OPTIONS = ("text_column", "label_column", "path_column", "group_column", "label_columns", "label_separator")


def dataset_options(config_like) -> dict:
    """load_dataset's column options from a RunConfig or a mapping of settings (empty: detected)."""
    get = config_like.get if hasattr(config_like, "get") else lambda k: getattr(config_like, k, None)
    return {k: (get(k) or None) for k in DATASET_OPTIONS}


def _label_options(columns: dict) -> dict:
    return {k: columns[k] for k in ("label_column", "group_column", "label_columns", "label_separator")}


def _no_groups_for_folders(columns: dict) -> None:
    if columns.get("label_columns"):
        raise DataError(f"Label columns ('{columns['label_columns']}') need a table: class folders have no "
                        "columns. Upload a CSV with one row per example and one 0/1 column per label.")
    if columns.get("group_column"):
        raise DataError(
            f"A group column ('{columns['group_column']}') needs a table: class folders have no columns. "
            "Upload a CSV with one row per image (its path, its label and its group), or leave the "
            "group column empty.")


def _unsupported(name: str, suffix: str, is_image: bool = False) -> DataError:
    if suffix == ".xls":
        return DataError(
            f"'{name}' is an old-style Excel file (.xls). Open it in your spreadsheet program, "
            "save it as 'Excel Workbook (.xlsx)' or 'CSV', and upload that."
        )
    if is_image or suffix in IMAGE_EXTENSIONS:
        return DataError(
            f"'{name}' is a single image. Transfer Lab needs many labelled images: put them in "
            "one folder per label, compress the folders into a zip and upload the zip."
        )
    kind = f"'{suffix}' files" if suffix else "files without an extension"
    return DataError(
        f"Transfer Lab cannot read '{name}' ({kind}). Upload a .zip of image folders (one folder "
        "per label), or a table of texts and labels as CSV, TSV or Excel (.xlsx)."
    )
