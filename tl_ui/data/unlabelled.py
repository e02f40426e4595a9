"""Inputs without labels, for batch scoring (issue 34): a zip or folder of images (any folders), or a
table of texts or image paths. The same upload limits as the Data step (tl_ui/data/limits.py) are
checked here, before anything is decoded; the images themselves are decoded one batch at a time by
the worker that scores them (never all at once), with the same pixel limit.

Each input keeps a `name` for the output table: its path inside the upload (never a DICOM header
field) or, for a table, "row N" as a spreadsheet numbers it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .dataset import DataError
from .images import _walk_files, descend_single_folder, is_image_file
from .limits import Limits, human_size
from .table_columns import column_named, find_path_column, pick_text_column, resolve_column
from .table_read import TABLE_EXTENSIONS, read_table
from .wording import quoted_list
from .zips import extract_zip


@dataclass
class Inputs:
    modality: str                 # "image" or "text"
    items: list[str]              # image paths (inside the upload's working folder) or texts
    names: list[str]              # what the output table calls each one
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)


def load_inputs(path: str | Path, workdir: str | Path, *, limits: Optional[Limits] = None,
                text_column: Optional[str] = None, path_column: Optional[str] = None) -> Inputs:
    """Read an upload of unlabelled inputs; DataError (a sentence saying what to do) when it cannot be used."""
    limits = limits or Limits()
    path = Path(path)
    name = path.name or str(path)
    if not path.exists():
        raise DataError(f"Could not find '{name}'. Check that the file or folder exists and try again.")
    if path.is_dir():
        return _from_tree(path, name, limits)
    size = path.stat().st_size
    if size > limits.max_upload_bytes:
        raise DataError(f"The file '{name}' is {human_size(size)}; Transfer Lab accepts uploads up to "
                        f"{human_size(limits.max_upload_bytes)}. Split the inputs into smaller batches.")
    if size == 0:
        raise DataError(f"The file '{name}' is empty (0 bytes). Check that it saved correctly and upload it again.")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        Path(workdir).mkdir(parents=True, exist_ok=True)
        return _from_tree(extract_zip(path, Path(workdir), limits), name, limits)
    if suffix in TABLE_EXTENSIONS:
        return _from_table(path, limits, text_column, path_column)
    if is_image_file(path):
        return Inputs("image", [str(path)], [name], name)
    raise DataError(f"Transfer Lab cannot score '{name}'. Upload a .zip of images, or a table (CSV, TSV or Excel) "
                    "with one text or one image path per row.")


def _from_tree(root: Path, source: str, limits: Limits) -> Inputs:
    top = descend_single_folder(root)
    files = list(_walk_files(top))
    images = [f for f in files if is_image_file(f)]
    tables = [f for f in files if f.suffix.lower() in TABLE_EXTENSIONS]
    if not images and len(tables) == 1:   # a table (of texts, or of image paths beside it) inside the zip
        return _from_table(tables[0], limits, None, None, source=source)
    if not images:
        raise DataError(f"'{source}' holds no images (looked for PNG, JPEG, TIFF, BMP, GIF, WebP and DICOM files). "
                        "Put the images to score into the zip, in any folders.")
    if len(images) > limits.max_files:
        raise DataError(f"'{source}' holds {len(images):,} images; Transfer Lab scores at most {limits.max_files:,} "
                        "at once (setting TL_MAX_IMAGES). Split them into smaller batches.")
    skipped = len(files) - len(images)
    warnings = [f"{skipped} file{'s' if skipped != 1 else ''} that {'are' if skipped != 1 else 'is'} not an image "
                "were skipped."] if skipped else []
    names = [p.relative_to(top).as_posix() for p in images]
    return Inputs("image", [str(p) for p in images], names, source, warnings)


def _from_table(path: Path, limits: Limits, text_column: Optional[str], path_column: Optional[str],
                source: str = "") -> Inputs:
    table = read_table(path, limits)
    frame = table.frame
    source = source or table.name
    column = (resolve_column(table, path_column, "image path") if path_column
              else None if text_column else find_path_column(frame))
    if column is not None:
        return _image_rows(table, path.parent.resolve(), column, source)
    if text_column:
        column = resolve_column(table, text_column, "text")
    elif len(frame.columns) == 1:
        column = frame.columns[0]
    else:
        column = column_named(list(frame.columns), ("text", "texts", "sentence", "review", "message", "content",
                                                    "body")) or pick_text_column(table, exclude=())[0]
    rows = [(int(i) + 2, v) for i, v in frame[column].items() if str(v).strip()]
    if not rows:
        raise DataError(f"Column '{column}' of '{table.name}' is empty: there is nothing to score.")
    warnings = list(table.warnings)
    if len(rows) < len(frame):
        warnings.append(f"{len(frame) - len(rows)} empty row(s) of column '{column}' were skipped.")
    return Inputs("text", [str(v) for _, v in rows], [f"row {r}" for r, _ in rows], source, warnings)


def _image_rows(table, base: Path, column: str, source: str) -> Inputs:
    items, names, problems = [], [], []
    for index, value in table.frame[column].items():
        value = str(value).strip()
        if not value:
            continue
        candidate = Path(value.replace("\\", "/"))
        resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
        if not resolved.is_relative_to(base) or not resolved.is_file():
            problems.append(f"row {int(index) + 2} ('{value}')")
            continue
        items.append(str(resolved))
        names.append(value)
    if problems:
        raise DataError(f"{len(problems)} row(s) of '{table.name}' name image files that are not in the table's "
                        f"folder or below it ({quoted_list(problems, 3)}). Upload one zip holding the table and "
                        "the images, with paths relative to the table.")
    if not items:
        raise DataError(f"Column '{column}' of '{table.name}' names no images: there is nothing to score.")
    return Inputs("image", items, names, source, list(table.warnings))
