"""Size limits for one upload. Checked before anything is read or unpacked.

The defaults below are the only place of each data limit's default: the server's settings
(tl_ui/core/settings.py: `TL_MAX_UPLOAD_MB`, `TL_MAX_IMAGES`, ...) start from them.
"""
from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 200 * MB          # the file as uploaded (zip, CSV, Excel)
    max_uncompressed_bytes: int = 1024 * MB   # everything a zip would unpack to, together
    max_files: int = 20_000                   # entries in a zip / images in a folder
    max_image_pixels: int = 40_000_000        # width x height of any one image
    max_rows: int = 100_000                   # rows of a CSV/TSV/Excel table
    min_per_class: int = 2                    # fewer examples than this in a class is an error
    max_classes: int = 200                    # distinct labels in one dataset
    max_dataset_pixels: int = 2_000_000_000   # width x height of all images together (decoded memory)

    @classmethod
    def from_record(cls, record: dict) -> "Limits":
        """From run.json's `limits` (which may also hold run limits, e.g. max_model_params_m)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (record or {}).items() if k in known})


def human_size(n_bytes: int) -> str:
    """'1.5 GB', '200 MB', '12 KB': sizes as a person reads them."""
    size = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(size)} bytes"
            return f"{size:.0f} {unit}" if size >= 10 else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover
