"""Image datasets: folders of class folders, and checks on every image file."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image

from .dataset import DataError, LabelledDataset
from .limits import Limits
from .validate import Origin, check_classes, class_warnings, duplicate_warning
from .wording import plural, quoted_list
from .zips import is_junk

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
# Files that mean "this is a text dataset", as opposed to stray documents we can skip.
TEXT_FILE_EXTENSIONS = frozenset({".txt", ".csv", ".tsv", ".json", ".jsonl", ".md", ".xlsx"})
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


def check_image(path: Path, shown: str, source: str, limits: Limits) -> tuple[int, int]:
    """Open, verify and fully decode one image; return (width, height) or raise DataError."""
    where = f"'{shown}' in '{source}'" if shown != source else f"'{shown}'"
    with pixel_limit(limits.max_image_pixels):
        return _check_image(path, where, limits)


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
    """Check every image (errors raise) and return warnings about tiny and duplicate images."""
    tiny, hashes = [], []
    for path, name in zip(paths, shown):
        width, height = check_image(path, name, source, limits)
        if min(width, height) < TINY_SIDE:
            tiny.append((name, width, height))
        hashes.append(_file_hash(path))
    warnings = []
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
            if ext in IMAGE_EXTENSIONS:
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
        if inner_dirs or not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in inner_files):
            return subdirs[0]
    return root


def _walk_files(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not is_junk((d,)))
        for name in sorted(filenames):
            if not is_junk((name,)):
                yield Path(dirpath) / name


def _no_class_folders(origin: Origin, loose: list[Path]) -> DataError:
    has_images = any(p.suffix.lower() in IMAGE_EXTENSIONS for p in loose)
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
    return "/".join(sorted({e.lstrip('.').upper() for e in IMAGE_EXTENSIONS} - {"JPEG", "TIF"}))


def _file_hash(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fp:
        while chunk := fp.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
