"""A folder written whole or not at all (the model folder, an ONNX export, a Space); a scratch folder that
lasts as long as the process."""
from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional


@contextmanager
def replace_when_done(target: Path, tmp: Optional[Path] = None) -> Iterator[Path]:
    """Yield a fresh folder beside `target` (`tmp`, or `.<name>.partial-<id>`) to write into; when the block
    ends without an error it replaces `target`, otherwise it is removed. A reader (a download, a worker loading
    the model) finds the old folder or the whole new one, never half of one."""
    target = Path(target)
    tmp = Path(tmp) if tmp is not None else target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def scratch_for_this_process(prefix: str) -> str:
    """A new folder in the temp directory, removed when this process exits: for what a command-line run
    reads its data into (an unpacked zip, converted images), which it needs until it ends."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
