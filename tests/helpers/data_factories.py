"""Builders for real test inputs on disk (zips, folders, images, CSV/TSV/XLSX files).

Kept out of conftest.py on purpose: tests import what they need from here.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pytest
from PIL import Image

from tl_ui.data import DataError, Limits, load_dataset


# -- images ---------------------------------------------------------------------------------

def png_bytes(seed: int = 0, size: tuple[int, int] = (40, 40), fmt: str = "PNG") -> bytes:
    """A small noise image; a different seed gives different bytes."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def huge_png_header(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims `width` x `height` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)   # 8-bit grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def class_entries(classes: dict[str, int], *, top: str = "", size=(40, 40), start_seed: int = 0,
                  ext: str = "png") -> dict[str, bytes]:
    """{'top/label/img_000.png': bytes} for each class; every image distinct."""
    prefix = f"{top}/" if top else ""
    fmt = "JPEG" if ext in ("jpg", "jpeg") else "PNG"
    entries, seed = {}, start_seed
    for label, n in classes.items():
        for i in range(n):
            entries[f"{prefix}{label}/img_{i:03d}.{ext}"] = png_bytes(seed, size, fmt)
            seed += 1
    return entries


# -- zips and folders -----------------------------------------------------------------------

def zip_of(path: Path, entries: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip holding exactly `entries` (names are written as given, even unsafe ones)."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, payload in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            archive.writestr(info, payload)
    return path


def image_zip(path: Path, classes: dict[str, int], *, top: str = "", size=(40, 40),
              extra: dict[str, bytes] | None = None) -> Path:
    entries = class_entries(classes, top=top, size=size)
    entries.update(extra or {})
    return zip_of(path, entries)


def write_tree(root: Path, entries: dict[str, bytes]) -> Path:
    for name, payload in entries.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
    return root


def mark_encrypted(path: Path) -> Path:
    """Set the 'encrypted' flag on every entry of a zip, as a password-protected zip has."""
    data = bytearray(path.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (pos := data.find(signature, start)) >= 0:
            data[pos + flag_offset] |= 0x1
            start = pos + 4
    path.write_bytes(bytes(data))
    return path


# -- tables ---------------------------------------------------------------------------------

POSITIVE = ["A warm, funny film with a great cast", "Loved every minute of this story",
            "The acting is superb and the ending moving", "Beautifully shot and well written",
            "A delight from start to finish", "Clever, kind and surprising throughout"]
NEGATIVE = ["Dull, slow and far too long", "The plot makes no sense at all",
            "Wooden acting and a lazy script", "I walked out after half an hour",
            "A tired remake with nothing new", "Loud, messy and instantly forgettable"]


def text_rows(n_per_class: int = 6, labels: Sequence[str] = ("positive", "negative")) -> list[list[str]]:
    """[[text, label], ...] with distinct texts, classes interleaved."""
    pools = [POSITIVE, NEGATIVE]
    rows = []
    for i in range(n_per_class):
        for k, label in enumerate(labels):
            pool = pools[k % 2]
            rows.append([f"{pool[i % len(pool)]} (#{k}-{i})", label])
    return rows


def write_csv(path: Path, header: Sequence[str] | None, rows: Iterable[Sequence[object]], *,
              delimiter: str = ",", encoding: str = "utf-8") -> Path:
    import csv
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    import openpyxl
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


# -- checking that nothing escapes the working folder -----------------------------------------

def snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def load_expecting_error(tmp_path: Path, path: Path, *, limits: Limits | None = None,
                         **columns) -> tuple[str, Path]:
    """Load `path` expecting DataError; check nothing was written outside the work folder.

    Returns (message, workdir).
    """
    workdir = tmp_path / "work"
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as info:
        load_dataset(path, workdir, limits=limits, **columns)
    new = snapshot(tmp_path) - before
    outside = sorted(p for p in new if p != workdir and not p.is_relative_to(workdir))
    assert not outside, f"written outside the work folder: {outside}"
    message = str(info.value)
    assert str(tmp_path) not in message, "messages must name files by base name only"
    assert "Traceback" not in message and "Error(" not in message and "Errno" not in message
    return message, workdir


# -- DICOM (real files shipped with pydicom) --------------------------------------------------

def dicom_test_file(name: str) -> Path:
    """A file from pydicom's own test data (shipped in its wheel; never downloaded)."""
    from pydicom.data import get_testdata_file
    return Path(get_testdata_file(name))


def dicom_identifiers(*names: str) -> set[str]:
    """PatientName / PatientID / OtherPatientIDs values of pydicom test files (to look for leaks)."""
    import pydicom
    found = set()
    for name in names:
        ds = pydicom.dcmread(dicom_test_file(name), stop_before_pixels=True, force=True)
        values = [ds.get("PatientName"), ds.get("PatientID")]
        values += [item.get("PatientID") for item in ds.get("OtherPatientIDsSequence", [])]
        found |= {str(v) for v in values if v is not None and str(v).strip()}
    return found


def dicom_bytes(name: str, *, variant: int = 0, **changes) -> bytes:
    """The bytes of a pydicom test file, its pixels nudged by `variant` (so copies differ) and
    header elements set from `changes` (e.g. PhotometricInterpretation="MONOCHROME1")."""
    import pydicom
    ds = pydicom.dcmread(dicom_test_file(name))
    if variant:
        pixels = ds.pixel_array.copy()
        pixels[: 1 + variant % 8, : 4] = pixels.max() - variant
        ds.PixelData = pixels.tobytes()
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def dicom_class_entries(n_per_class: int = 3, *, top: str = "",
                        classes: dict[str, str] | None = None) -> dict[str, bytes]:
    """{'ct/slice_000.dcm': ..., 'ct/slice_001': ...}: CT and MR slices in two class folders;
    every second file has no extension (as PACS exports often do), every file has distinct pixels."""
    classes = classes or {"ct": "CT_small.dcm", "mr": "MR_small.dcm"}
    prefix = f"{top}/" if top else ""
    entries = {}
    for label, source in classes.items():
        for i in range(n_per_class):
            name = f"{prefix}{label}/slice_{i:03d}" + (".dcm" if i % 2 == 0 else "")
            entries[name] = dicom_bytes(source, variant=i + 1)
    return entries


def dicom_zip(path: Path, n_per_class: int = 3, *, top: str = "",
              extra: dict[str, bytes] | None = None) -> Path:
    entries = dicom_class_entries(n_per_class, top=top)
    entries.update(extra or {})
    return zip_of(path, entries)


def png16_bytes(size: tuple[int, int] = (64, 48), peak: int = 4000, fmt: str = "PNG") -> bytes:
    """A 16-bit greyscale ramp from 0 to `peak` (PNG via Pillow, TIFF via tifffile)."""
    width, height = size
    ramp = np.linspace(0, peak, width * height).reshape(height, width).astype(np.uint16)
    out = io.BytesIO()
    if fmt == "TIFF":
        import tifffile
        tifffile.imwrite(out, ramp)
    else:
        Image.fromarray(ramp).save(out, format="PNG")
    return out.getvalue()
