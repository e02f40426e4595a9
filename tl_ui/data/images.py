"""Image datasets: folders of class folders, checks on every image file, and reading any
supported image (ordinary, 16-bit PNG/TIFF, DICOM) as 8-bit pixels."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
from PIL import Image

from .dataset import DataError, LabelledDataset
from .dicom import (DICOM_EXTENSIONS, auto_range, dicom_reading_note, is_dicom_path, read_dicom,
                    scale_to_uint8)
from .limits import Limits
from .multilabel import folder_copies_note
from .validate import Origin, check_classes, check_total_pixels, class_warnings, duplicate_warning
from .wording import plural, quoted_list
from .zips import is_junk

PICTURE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
IMAGE_EXTENSIONS = PICTURE_EXTENSIONS | DICOM_EXTENSIONS   # + extension-less files marked 'DICM'
# Files that mean "this is a text dataset", as opposed to stray documents we can skip.
TEXT_FILE_EXTENSIONS = frozenset({".txt", ".csv", ".tsv", ".json", ".jsonl", ".md", ".xlsx"})
_NOT_SNIFFED = PICTURE_EXTENSIONS | TEXT_FILE_EXTENSIONS
TIFF_EXTENSIONS = frozenset({".tif", ".tiff"})
# Pillow modes with more than 8 bits per value: scaled from their value range, never clipped.
HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
TINY_SIDE = 32   # images smaller than this on a side: warn
SPLIT_FOLDER_NAMES = frozenset({"train", "training", "test", "testing", "val", "valid",
                                "validation", "dev"})

# Image.MAX_IMAGE_PIXELS is process-wide; the lock keeps concurrent uploads from restoring
# each other's temporary value and leaving it altered.
_PIXEL_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Use `max_pixels` as Pillow's decompression-bomb limit for the duration of the block."""
    with _PIXEL_LIMIT_LOCK:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def is_image_file(path: Path) -> bool:
    """An image by its extension, or a DICOM file by its 'DICM' marker (names without one)."""
    ext = path.suffix.lower()
    return ext in IMAGE_EXTENSIONS or is_dicom_path(path, _NOT_SNIFFED)


def check_image(path: Path, shown: str, source: str, limits: Limits) -> tuple[int, int]:
    """Open, verify and fully decode one image; return (width, height) or raise DataError."""
    return _inspect_one(path, shown, source, limits)[:2]


def _inspect_one(path: Path, shown: str, source: str, limits: Limits) -> tuple[int, int, int, str]:
    """(width, height, frames, duplicate key) of one image, fully decoded, or DataError."""
    where = f"'{shown}' in '{source}'" if shown != source else f"'{shown}'"
    with pixel_limit(limits.max_image_pixels):
        if is_dicom_path(path, _NOT_SNIFFED):
            # Duplicates by pixels: a re-exported copy differs in its header, not its image.
            image = read_dicom(path, name=shown, source=source, max_pixels=limits.max_image_pixels)
            key = hashlib.sha1(repr(image.pixels.shape).encode() + image.pixels.tobytes()).hexdigest()
            return image.pixels.shape[1], image.pixels.shape[0], image.n_frames, key
        if path.suffix.lower() in TIFF_EXTENSIONS:
            if (pixels := _deep_tiff(path, where, limits)) is not None:
                return pixels.shape[1], pixels.shape[0], 1, _file_hash(path)
        width, height = _check_image(path, where, limits)
        return width, height, 1, _file_hash(path)


def _check_image(path: Path, where: str, limits: Limits) -> tuple[int, int]:
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > limits.max_image_pixels:
                raise _too_many_pixels(where, (width, height), None, limits)
            img.verify()
        # verify() leaves the image unusable and misses truncated pixel data: decode it too.
        with Image.open(path) as img:
            img.load()
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow refuses before we see the size; its message carries the pixel count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_many_pixels(where, None, int(found.group(1)) if found else None, limits) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        raise DataError(
            f"The image {where} is damaged or not a real image file (it could not be read). "
            "Remove it or replace it with a good copy, then upload again."
        ) from None
    return width, height


def inspect_images(paths: Sequence[Path], shown: Sequence[str], labels: Sequence[str],
                   source: str, limits: Limits) -> list[str]:
    """Check every image (errors raise) and return warnings about tiny, duplicate and multi-frame
    images."""
    tiny, hashes, multi, total = [], [], [], 0
    for path, name in zip(paths, shown):
        width, height, frames, key = _inspect_one(path, name, source, limits)
        total += width * height
        check_total_pixels(total, source, limits)
        if min(width, height) < TINY_SIDE:
            tiny.append((name, width, height))
        if frames > 1:
            multi.append(name)
        hashes.append(key)
    warnings = []
    if multi:
        warnings.append(
            f"{plural(len(multi), 'DICOM file holds', 'DICOM files hold')} several frames "
            f"({quoted_list(multi, 3)}); Transfer Lab uses the middle frame of each. If other "
            "frames matter, export them as separate images."
        )
    if tiny:
        name, width, height = tiny[0]
        count = "All" if len(tiny) == len(paths) else str(len(tiny))
        warnings.append(
            f"{count} {'image is' if len(tiny) == 1 else 'images are'} smaller than {TINY_SIDE} "
            f"pixels on a side (e.g. '{name}', {width}x{height}). They will be enlarged to the "
            "model's input size, which works, but detail that is not there cannot be recovered."
        )
    warnings += duplicate_warning(hashes, labels, [f"'{n}'" for n in shown], "image")
    return warnings


def load_image_folders(root: Path, origin: Origin, limits: Limits,
                       shown_from: Path | None = None) -> LabelledDataset:
    """One sub-folder of `root` per label, images inside (nested folders are fine).

    Messages name files relative to `shown_from` (the top of the zip as the user made it).
    """
    source = origin.name
    shown_from = shown_from or root
    subdirs, loose = visible_children(root)
    if not subdirs:
        raise _no_class_folders(origin, loose)
    names = {d.name.strip().lower() for d in subdirs}
    if names <= SPLIT_FOLDER_NAMES and any(visible_children(d)[0] for d in subdirs):
        raise DataError(
            f"The {origin.kind} '{source}' is already split into "
            f"{quoted_list(sorted(d.name for d in subdirs))} folders. Transfer Lab makes its own "
            "split: put all images in one folder per label (no train/test folders) and upload again."
        )

    images, texts, others, empty = [], [], [], []
    count = 0
    for class_dir in subdirs:
        found = 0
        for path in _walk_files(class_dir):
            count += 1
            if count > limits.max_files:
                raise DataError(
                    f"The {origin.kind} '{source}' holds more than {limits.max_files:,} files; "
                    "Transfer Lab accepts at most that many per dataset. Use a smaller selection."
                )
            rel = path.relative_to(shown_from).as_posix()
            ext = path.suffix.lower()
            if is_image_file(path):
                images.append((path, rel, class_dir.name.strip()))
                found += 1
            elif ext in TEXT_FILE_EXTENSIONS:
                texts.append(rel)
            else:
                others.append(rel)
        if not found:
            empty.append(class_dir.name)

    if texts and images:
        raise DataError(
            f"The {origin.kind} '{source}' mixes images ({plural(len(images), 'file')}) and text "
            f"files ({plural(len(texts), 'file')}, e.g. '{texts[0]}'). Transfer Lab learns from one "
            "kind of data at a time: for images, keep only image files in the class folders; "
            "for text, upload a CSV or Excel table with a text column and a label column."
        )
    if texts:
        raise DataError(
            f"The {origin.kind} '{source}' contains text files (e.g. '{texts[0]}'), not images. "
            "For text, upload a CSV or Excel table with one column for the text and one for the "
            "label instead."
        )
    if not images:
        what = f" (found {quoted_list(others, 3)})" if others else ""
        raise DataError(
            f"The {origin.kind} '{source}' contains no images{what}. Transfer Lab reads "
            f"{_extension_list()} files, in one folder per label."
        )

    warnings = []
    if others:
        warnings.append(
            f"Skipped {plural(len(others), 'file')} that {'is' if len(others) == 1 else 'are'} "
            f"not an image: {quoted_list(others, 3)}. Transfer Lab reads {_extension_list()} files."
        )
    if loose:
        warnings.append(
            f"Skipped {plural(len(loose), 'file')} lying outside the class folders: "
            f"{quoted_list([p.name for p in loose], 3)}."
        )
    if empty:
        warnings.append(f"Skipped {plural(len(empty), 'folder')} with no images: {quoted_list(empty, 3)}.")

    labels = [label for _, _, label in images]
    check_classes(labels, origin, limits)
    paths = [path for path, _, _ in images]
    shown = [rel for _, rel, _ in images]
    warnings += class_warnings(labels)
    warnings += inspect_images(paths, shown, labels, source, limits)
    warnings += folder_copies_note(images)   # class folders stay single-label (tl_ui/data/multilabel.py)
    return LabelledDataset("image", [str(p.resolve()) for p in paths], labels, source, warnings)


def visible_children(folder: Path) -> tuple[list[Path], list[Path]]:
    """(sub-folders, files) of `folder`, sorted, without hidden and OS junk entries."""
    subdirs, files = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if is_junk((entry.name,)):
            continue
        (subdirs if entry.is_dir() else files).append(entry)
    return subdirs, files


def descend_single_folder(root: Path) -> Path:
    """A zip of 'scans/benign/...' and 'scans/malignant/...' has one top folder: step into it.

    A lone folder holding only images is not stepped into: it is a (single) class folder.
    """
    subdirs, files = visible_children(root)
    if len(subdirs) == 1 and not files:
        inner_dirs, inner_files = visible_children(subdirs[0])
        if inner_dirs or not any(is_image_file(f) for f in inner_files):
            return subdirs[0]
    return root


def _walk_files(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not is_junk((d,)))
        for name in sorted(filenames):
            if not is_junk((name,)):
                yield Path(dirpath) / name


def _no_class_folders(origin: Origin, loose: list[Path]) -> DataError:
    has_images = any(is_image_file(p) for p in loose)
    if has_images:
        return DataError(
            f"The {origin.kind} '{origin.name}' has images but no class folders. Put the images "
            "into one folder per label (for example 'benign/' and 'malignant/'), then upload "
            "the folders together."
        )
    return DataError(
        f"The {origin.kind} '{origin.name}' contains no folders of images. Put your images "
        "into one folder per label (for example 'benign/' and 'malignant/'), then upload "
        "the folders together."
    )


def _too_many_pixels(where: str, size_wh: tuple[int, int] | None, pixels: int | None,
                     limits: Limits) -> DataError:
    if size_wh:
        size = f" ({size_wh[0]}x{size_wh[1]} pixels)"
    elif pixels:
        size = f" ({pixels / 1e6:,.0f} megapixels)" if pixels >= 1_000_000 else f" ({pixels:,} pixels)"
    else:
        size = ""
    cap = limits.max_image_pixels
    cap_text = f"{cap / 1e6:g} megapixels" if cap >= 1_000_000 else f"{cap:,} pixels"
    return DataError(
        f"The image {where} is too large{size}: Transfer Lab accepts images up to "
        f"{cap_text}, to protect the server. Shrink it "
        "(most photo tools can resize to 2000 pixels a side) or remove it."
    )


def _extension_list() -> str:
    return "/".join(sorted({e.lstrip('.').upper() for e in PICTURE_EXTENSIONS} - {"JPEG", "TIF"})
                    + ["DICOM"])


def _file_hash(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fp:
        while chunk := fp.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- reading any supported image as 8-bit pixels ----------------------------------------------

def read_image(path: str | Path, *, window: Optional[str] = None,
               name: Optional[str] = None) -> Image.Image:
    """An 8-bit image ("L" or "RGB") for the model, previews and thumbnails.

    DICOM goes through the modality LUT and a window (`window`: a preset name of
    dicom.WINDOW_PRESETS, or None for the file's own); 16-bit PNG/TIFF are scaled from their
    value range (0.5-99.5 percentiles) instead of being clipped at 255. No metadata is kept.
    """
    path = Path(path)
    if is_dicom_path(path, _NOT_SNIFFED):
        return Image.fromarray(read_dicom(path, window=window, name=name).pixels)
    if path.suffix.lower() in TIFF_EXTENSIONS:
        if (pixels := _deep_tiff(path, f"'{name or path.name}'", None)) is not None:
            return Image.fromarray(pixels)
    with Image.open(path) as img:
        return to_8bit(img)


def to_8bit(img: Image.Image) -> Image.Image:
    """A Pillow image as "L" or "RGB"; high-bit-depth modes scaled from their value range."""
    if img.mode in HIGH_BIT_MODES:
        values = np.asarray(img)
        return Image.fromarray(scale_to_uint8(values, *auto_range(values)))
    if img.mode in ("L", "RGB"):
        img.load()
        return img.copy()
    return img.convert("RGB")


def save_preview_png(src_path: str | Path, dst_path: str | Path, max_side: int = 256, *,
                     window: Optional[str] = None) -> Path:
    """Write a windowed 8-bit PNG of any supported image, at most `max_side` pixels a side.

    The PNG is built from the pixels alone: no text chunks, EXIF, ICC profile or DICOM header
    travels with it, so it is safe to show or keep where the original must not go.
    """
    image = read_image(src_path, window=window)
    image.thumbnail((max_side, max_side))
    clean = Image.fromarray(np.asarray(image))   # a fresh image: empty .info
    dst = Path(dst_path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    clean.save(dst, format="PNG")
    return dst


def image_reading_note(dataset_items: Iterable[object], window: Optional[str] = None) -> Optional[dict]:
    """How the images became 8-bit pixels, for the model card; None when nothing special.

    dicom.dicom_reading_note's dict (or {"dicom": False}) plus "n_high_bit_depth": 16-bit
    PNG/TIFF images, scaled from their 0.5-99.5 percentile range."""
    items = [item for item in dataset_items if isinstance(item, (str, Path))]
    note = dicom_reading_note(items, window, known_extensions=_NOT_SNIFFED) or {"dicom": False}
    deep = sum(_is_high_bit(Path(item)) for item in items
               if Path(item).suffix.lower() in PICTURE_EXTENSIONS)
    if not note["dicom"] and not deep:
        return None
    note["n_high_bit_depth"] = deep
    return note


def _is_high_bit(path: Path) -> bool:
    try:
        if path.suffix.lower() in TIFF_EXTENSIONS:
            import tifffile
            with tifffile.TiffFile(path) as tif:
                return np.dtype(tif.pages.first.dtype).itemsize > 1
        with Image.open(path) as img:
            return img.mode in HIGH_BIT_MODES
    except Exception:   # noqa: BLE001 - an unreadable file is reported elsewhere
        return False


def _deep_tiff(path: Path, where: str, limits: Optional[Limits]) -> Optional[np.ndarray]:
    """8-bit pixels of a TIFF with more than 8 bits a sample (read by tifffile, first page);
    None for 8-bit TIFFs and for compressions tifffile cannot decode here: Pillow reads those."""
    import tifffile
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if page.dtype is None or np.dtype(page.dtype).itemsize == 1:
                return None
            size = (int(page.imagewidth), int(page.imagelength))
            if limits is not None and size[0] * size[1] > limits.max_image_pixels:
                raise _too_many_pixels(where, size, None, limits)
            arr, axes = page.asarray(), page.axes
    except DataError:
        raise
    except Exception:   # noqa: BLE001 - not a TIFF tifffile can decode: let Pillow try
        return None
    if arr.ndim == 3 and axes.startswith("S"):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3:
        arr = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., 0]
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
        return None
    return scale_to_uint8(arr, *auto_range(arr))
