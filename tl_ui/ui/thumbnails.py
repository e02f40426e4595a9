"""Small PNG previews for the page (user data never leaves the private folder at full size)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional


def thumbnail(src: str | Path, dst_folder: Path, name: str, size: int = 160) -> Optional[Path]:
    """A small PNG copy of an image (user data never leaves the private folder at full size)."""
    try:
        from PIL import Image

        with Image.open(src) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            if min(im.size) < 64:  # tiny images (e.g. 28 px digits): enlarge so they can be seen
                factor = math.ceil(64 / max(min(im.size), 1))
                im = im.resize((im.width * factor, im.height * factor), Image.NEAREST)
            out = dst_folder / f"{name}.png"
            im.save(out)
            return out
    except Exception:  # a missing or unreadable file just is not shown
        return None
