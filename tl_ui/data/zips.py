"""Unpacking an uploaded zip safely.

Every member name is checked before anything is written (a single unsafe name refuses the
whole upload), sizes and file counts are bounded from the central directory before extracting,
and the bytes actually written are counted again while extracting.
"""
from __future__ import annotations

import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .dataset import DataError
from .limits import Limits, human_size
from .wording import short

# Files that operating systems add to folders; never part of anyone's data.
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store", "__macosx"})

_END_OF_CENTRAL_DIR = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END = b"PK\x06\x06"
_CHUNK = 1 << 20


def is_junk(parts: tuple[str, ...] | list[str]) -> bool:
    """Hidden files/folders, macOS resource forks and OS thumbnails."""
    return any(p.startswith(".") or p.lower() in JUNK_NAMES for p in parts)


@dataclass
class ZipContents:
    files: list[tuple[zipfile.ZipInfo, PurePosixPath]]   # members to extract, with safe paths
    total_bytes: int                                       # declared uncompressed size of `files`


def extract_zip(path: Path, workdir: Path, limits: Limits) -> Path:
    """Unpack `path` into a new folder inside `workdir` and return that folder."""
    name = path.name
    _check_declared_count(path, limits)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError):
        raise _not_a_zip(path) from None
    with archive:
        contents = inspect_zip(archive, name, limits)
        if not contents.files:
            raise _empty_zip(name)
        dest = Path(tempfile.mkdtemp(prefix="unzipped-", dir=workdir))
        try:
            _extract(archive, contents, dest, name, limits)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    return dest


def inspect_zip(archive: zipfile.ZipFile, name: str, limits: Limits) -> ZipContents:
    """Check every member name and the declared sizes; nothing is extracted."""
    infos = archive.infolist()
    if not infos:
        raise _empty_zip(name)
    if len(infos) > limits.max_files:
        raise _too_many_files(name, len(infos), limits)
    files = []
    for info in infos:
        rel = safe_member_path(info.filename)
        if rel is None:
            raise DataError(
                f"The zip '{name}' contains an unsafe entry ('{short(info.filename)}') that points "
                "outside the zip's own folder. Nothing was unpacked. Create the zip again "
                "from your folder of images (for example with 'Compress' or 'Send to > Compressed folder')."
            )
        if info.is_dir() or _is_symlink(info) or not rel.parts or is_junk(rel.parts):
            continue
        files.append((info, rel))
    if any(info.flag_bits & 0x1 for info, _ in files):
        raise DataError(
            f"The zip '{name}' is password-protected. Create it again without a password and upload it."
        )
    total = sum(info.file_size for info, _ in files)
    if total > limits.max_uncompressed_bytes:
        raise _too_big_unpacked(name, total, limits)
    return ZipContents(files, total)


def safe_member_path(member: str) -> PurePosixPath | None:
    """The member's path relative to the zip's root, or None when it is absolute or uses '..'."""
    norm = member.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return None
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def zip_uncompressed_size(path: Path, limits: Limits) -> int:
    """Declared unpacked size of a zip-based file (an .xlsx), bounded like an upload."""
    _check_declared_count(path, limits)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > limits.max_files:
            raise _too_many_files(path.name, len(infos), limits)
        return sum(info.file_size for info in infos)


# -- internals ------------------------------------------------------------------------------

def _extract(archive: zipfile.ZipFile, contents: ZipContents, dest: Path, name: str,
             limits: Limits) -> None:
    root = dest.resolve()
    written = 0
    for info, rel in contents.files:
        target = dest.joinpath(*rel.parts)
        # Belt and braces: the name check above should make this impossible.
        if not target.resolve().is_relative_to(root):
            raise DataError(
                f"The zip '{name}' contains an unsafe entry ('{short(info.filename)}'). "
                "Create the zip again from your folder of images."
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > limits.max_uncompressed_bytes:
                        raise _too_big_unpacked(name, None, limits)
                    out.write(chunk)
        except DataError:
            raise
        except NotImplementedError:
            raise DataError(
                f"The zip '{name}' uses a compression method Transfer Lab cannot read "
                f"(entry '{short(info.filename)}'). Create it again with your computer's standard "
                "'Compress' / 'Compressed folder' command."
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError):
            raise DataError(
                f"The zip '{name}' is damaged: the entry '{short(info.filename)}' could not be "
                "unpacked. Create the zip again and upload it."
            ) from None
        except OSError:
            raise DataError(
                f"The zip '{name}' could not be unpacked at entry '{short(info.filename)}' "
                "(two entries may clash, or the server's disk is full). Create the zip again "
                "from a plain folder of images and upload it."
            ) from None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_declared_count(path: Path, limits: Limits) -> None:
    # zipfile reads the whole central directory into memory when it opens a zip, so a zip
    # declaring millions of entries is refused from its end record, before it is opened.
    count = _declared_entry_count(path)
    if count is not None and count > limits.max_files:
        raise _too_many_files(path.name, count, limits)


def _declared_entry_count(path: Path) -> int | None:
    """Entry count from the zip's end-of-central-directory record (None if not found)."""
    try:
        with open(path, "rb") as fp:
            fp.seek(0, 2)
            size = fp.tell()
            tail_len = min(size, 22 + 65535)
            fp.seek(size - tail_len)
            tail = fp.read(tail_len)
            pos = tail.rfind(_END_OF_CENTRAL_DIR)
            if pos < 0 or len(tail) - pos < 22:
                return None
            (total,) = struct.unpack("<H", tail[pos + 10: pos + 12])
            if total != 0xFFFF:
                return total
            locator = tail[pos - 20: pos] if pos >= 20 else b""
            if locator[:4] != _ZIP64_LOCATOR:
                return None
            (record_offset,) = struct.unpack("<Q", locator[8:16])
            fp.seek(record_offset)
            record = fp.read(56)
            if record[:4] != _ZIP64_END:
                return None
            return struct.unpack("<Q", record[32:40])[0]
    except (OSError, struct.error, ValueError):
        return None


def _not_a_zip(path: Path) -> DataError:
    with open(path, "rb") as fp:
        head = fp.read(4)
    if head.startswith(b"PK"):
        return DataError(
            f"The zip '{path.name}' is damaged or incomplete (perhaps the upload or download was "
            "cut off). Create the zip again and upload it."
        )
    return DataError(
        f"The file '{path.name}' is not a zip archive, although its name ends in .zip. "
        "Put your images in one folder per label, compress the folders into a zip "
        "(for example with 'Compress' or 'Send to > Compressed folder') and upload that."
    )


def _empty_zip(name: str) -> DataError:
    return DataError(
        f"The zip '{name}' is empty: it contains no files. Put your images in it, "
        "one folder per label, and upload it again."
    )


def _too_many_files(name: str, count: int, limits: Limits) -> DataError:
    return DataError(
        f"The zip '{name}' contains {count:,} entries; Transfer Lab accepts at most "
        f"{limits.max_files:,} files per upload. Upload a smaller selection of images."
    )


def _too_big_unpacked(name: str, total: int | None, limits: Limits) -> DataError:
    declared = f" (it declares {human_size(total)})" if total is not None else ""
    return DataError(
        f"The zip '{name}' would unpack to more than {human_size(limits.max_uncompressed_bytes)}"
        f"{declared}; Transfer Lab refuses it to protect the server. "
        "Upload fewer or smaller images."
    )


