"""The README's front matter is a valid Hugging Face Space configuration for this repository."""
from __future__ import annotations

from pathlib import Path

import gradio
import yaml

REPO = Path(__file__).resolve().parents[2]


def front_matter() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "the README must start with the Space's YAML front matter"
    block = text.split("---\n", 2)[1]
    return yaml.safe_load(block)


def test_space_front_matter_names_a_gradio_app_that_exists():
    config = front_matter()
    assert config["sdk"] == "gradio"
    assert config["sdk_version"] == gradio.__version__
    assert (REPO / config["app_file"]).is_file()
    assert str(config["python_version"]).startswith("3.")
    assert config["suggested_hardware"] == "cpu-basic"
    assert {"title", "emoji", "colorFrom", "colorTo", "license"} <= config.keys()
    assert config["colorFrom"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert len(config["short_description"]) <= 60


def test_space_requirements_install_this_package_with_extras_it_declares(tmp_path):
    """What a Space's `pip install -r requirements.txt` would install, asked of pip itself (a dry run
    with pip's JSON report; no dependencies resolved, nothing downloaded)."""
    import json
    import subprocess
    import sys
    from importlib.metadata import metadata

    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation", "-q",
                    "-r", "requirements.txt", "--report", str(report)], cwd=REPO, check=True, timeout=120)
    installs = json.loads(report.read_text())["install"]
    ours = [item for item in installs if item["metadata"]["name"] == "tl_ui"]
    assert ours and ours[0]["download_info"]["url"] == REPO.as_uri()
    extras = set(ours[0].get("requested_extras") or [])
    assert {"explain", "report", "onnx"} <= extras
    assert extras <= set(metadata("tl_ui").get_all("Provides-Extra"))
