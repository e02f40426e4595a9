"""Clinical images end to end: a DICOM zip trains, predicts a .dcm, and no patient identifier
is in anything Transfer Lab wrote (run folder, its log, the CLI's answers)."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers.data_factories import dicom_identifiers, dicom_zip

REPO = Path(__file__).resolve().parents[2]


def test_dicom_zip_trains_predicts_and_keeps_no_identifiers(tmp_path):
    data = dicom_zip(tmp_path / "scans.zip", n_per_class=8)
    out = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "tl_ui", "train", "--data", str(data), "--image-size", "64",
                            "--epochs", "3", "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                           timeout=600)
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["status"] == "finished"
    one = tmp_path / "new_scan.dcm"
    with zipfile.ZipFile(data) as zf:
        one.write_bytes(zf.read(next(n for n in zf.namelist() if n.startswith("ct/"))))
    predict = subprocess.run([sys.executable, "-m", "tl_ui", "predict", "--run", str(out), str(one), "--json"],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
    assert predict.returncode == 0, predict.stderr
    assert set(json.loads(predict.stdout)["probabilities"]) == {"ct", "mr"}

    manifest = json.loads((out / "model" / "transfer_lab.json").read_text())
    assert manifest["image_reading"]["dicom"] is True
    assert "DICOM" in (out / "model" / "README.md").read_text()
    secrets = {s for s in dicom_identifiers("CT_small.dcm", "MR_small.dcm") if len(s) >= 4}
    assert secrets
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    said = (train.stdout + train.stderr + predict.stdout + predict.stderr).encode()
    for secret in secrets:
        assert secret.encode() not in written, f"{secret!r} was written into the run folder"
        assert secret.encode() not in said, f"{secret!r} was printed"
    assert not any(p.suffix.lower() == ".dcm" for p in out.rglob("*")), "no original file is copied"
