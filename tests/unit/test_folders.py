"""tl_ui/core/folders.py: a folder is replaced whole or not at all."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tl_ui.core.folders import replace_when_done


def test_the_new_folder_replaces_the_old_one_only_when_written_whole(tmp_path):
    target = tmp_path / "onnx"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with replace_when_done(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()          # readers still see the old folder meanwhile
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]   # nothing partial left beside it


def test_an_error_keeps_the_old_folder_and_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "space"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with replace_when_done(target, tmp_path / ".space.partial-x") as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("export failed")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["space"]


def test_a_scratch_folder_lasts_as_long_as_its_process(tmp_path):
    """What a command-line run unpacks its data into is gone when the command ends."""
    import subprocess
    import sys

    script = ("from pathlib import Path\nfrom tl_ui.core.folders import scratch_for_this_process\n"
              "path = Path(scratch_for_this_process('tl-cli-data-'))\n(path / 'image.png').write_bytes(b'x')\n"
              "print(path)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).parent == tmp_path
    assert list(tmp_path.iterdir()) == []
