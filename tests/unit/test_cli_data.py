"""`python -m tl_ui check-data`: a summary (text or JSON) and exit 0, or a message and exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.data_factories import image_zip, text_rows, write_csv
from tl_ui.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_human_summary_for_an_image_zip(tmp_path, capsys):
    path = image_zip(tmp_path / "scans.zip", {"benign": 6, "malignant": 5})
    assert main(["check-data", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("scans.zip: 11 images, 2 labels\n")
    assert "  benign     6\n  malignant  5\n" in out
    assert "No problems found." in out


def test_json_summary_with_warnings(tmp_path, capsys):
    rows = [[f"{text} ({i})", label] for i, (text, label) in enumerate(text_rows(3))]
    path = write_csv(tmp_path / "notes.csv", ["body", "outcome"], rows)
    assert main(["check-data", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["modality"] == "text"
    assert summary["n_examples"] == 6
    assert summary["classes"] == {"negative": 3, "positive": 3}
    assert any(w.startswith("Few examples") for w in summary["warnings"])


def test_column_options(tmp_path, capsys):
    rows = [[text, label, "x" if i % 2 else "y"] for i, (text, label) in enumerate(text_rows())]
    path = write_csv(tmp_path / "notes.csv", ["text", "label", "ward"], rows)
    assert main(["check-data", str(path), "--json", "--label-column", "ward"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == {"x": 6, "y": 6}


def test_bad_data_exits_2_with_the_message(tmp_path, capsys):
    path = image_zip(tmp_path / "scans.zip", {"benign": 6})
    assert main(["check-data", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: The zip 'scans.zip' has only one class folder ('benign'). Add at "
                            "least one more folder of images, one folder per label.\n")


def test_temporary_work_folder_is_removed(tmp_path, capsys):
    import tempfile
    path = image_zip(tmp_path / "scans.zip", {"a": 5, "b": 5})
    before = set(Path(tempfile.gettempdir()).glob("tl-check-data-*"))
    assert main(["check-data", str(path)]) == 0
    assert set(Path(tempfile.gettempdir()).glob("tl-check-data-*")) == before


def test_command_line_has_no_traceback(tmp_path):
    missing = tmp_path / "missing.csv"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "tl_ui", "check-data", str(missing)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == ("error: Could not find 'missing.csv'. Check that the file or folder "
                           "exists and try again.\n")
