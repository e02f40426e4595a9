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


def test_space_installs_the_package():
    lines = [l.strip() for l in (REPO / "requirements.txt").read_text().splitlines()]
    assert "." in lines
