"""The small real datasets bundled in `<repo>/assets/` (see assets/SOURCES.md)."""
from __future__ import annotations

import os
from pathlib import Path

SAMPLE_FILES = {"image": "sample_digits.zip", "text": "sample_reviews.csv"}


def assets_dir() -> Path:
    """`$TL_ASSETS_DIR` if set, else the `assets/` folder beside the `tl_ui` package."""
    override = os.environ.get("TL_ASSETS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "assets"


def sample_dataset_path(modality: str) -> Path:
    """Path of the bundled sample for 'image' (MNIST digits zip) or 'text' (movie reviews CSV)."""
    if modality not in SAMPLE_FILES:
        raise ValueError(f"modality must be one of {sorted(SAMPLE_FILES)}, got {modality!r}")
    path = assets_dir() / SAMPLE_FILES[modality]
    if not path.is_file():
        raise FileNotFoundError(
            f"The sample dataset {SAMPLE_FILES[modality]} is missing from {path.parent}; "
            "rebuild it with 'python assets/build_samples.py'."
        )
    return path
