"""Small PNG previews for the page (user data never leaves the private folder at full size).

Every preview goes through `tl_ui.data.images.save_preview_png`: a windowed 8-bit PNG made from
the pixels alone. The original file is never copied or opened with Pillow, so a DICOM's header
(the patient's name, ID, dates) never reaches the page.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

MIN_SIDE = 64   # tiny images (e.g. 28 px digits) are enlarged to at least this, so they can be seen


def thumbnail(src: str | Path, dst_folder: Path, name: str, size: int = 160,
              window: Optional[str] = None) -> Optional[Path]:
    """`dst_folder/name.png`: a metadata-free preview of any supported image (DICOM through
    `window`, a preset of tl_ui.data.dicom.WINDOW_PRESETS, or None for each file's own window),
    at most `size` pixels a side. None when the file cannot be read (it is then not shown)."""
    from PIL import Image

    from tl_ui.data.images import save_preview_png

    out = Path(dst_folder) / f"{name}.png"
    try:
        save_preview_png(src, out, max_side=size, window=window)
        with Image.open(out) as im:   # our own PNG, never the original file
            if min(im.size) < MIN_SIDE:
                factor = math.ceil(MIN_SIDE / max(min(im.size), 1))
                big = im.resize((im.width * factor, im.height * factor), Image.NEAREST)
                Image.fromarray(np.asarray(big)).save(out, format="PNG")
        return out
    except Exception:   # noqa: BLE001 - a missing or unreadable file just is not shown
        out.unlink(missing_ok=True)
        return None
