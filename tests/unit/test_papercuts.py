"""Papercuts found by trying Transfer Lab as a new user would (issue: papercuts)."""
from __future__ import annotations

import socket
import time
from pathlib import Path

from tl_ui.data import sample_dataset_path

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]   # nothing listens there once the socket is closed


def test_hub_check_is_quick_and_remembered(monkeypatch):
    from tl_ui.core import catalog

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    started = time.time()
    assert catalog.hub_reachable() is False
    assert catalog.hub_reachable() is False
    assert time.time() - started < catalog.HUB_CHECK_TIMEOUT_S + 1


def _setup_sandbox(tmp_path: Path, pip_exit: int) -> Path:
    """A copy of scripts/setup.sh beside a pyproject.toml, with a stand-in `.venv/bin/python` that
    prints a screen of pip-like noise and exits with `pip_exit` (the script under test is setup.sh)."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup.sh").write_text((REPO / "scripts" / "setup.sh").read_text())
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n"
                      "for i in 1 2 3 4 5 6 7 8 9 10; do echo \"pip chatter $i: $*\"; done\n"
                      "echo 'pip warning on stderr' >&2\n"
                      f"exit {pip_exit}\n")
    python.chmod(0o755)
    return tmp_path


def test_setup_prints_one_line_and_keeps_pips_output_in_its_log(tmp_path):
    import subprocess

    sandbox = _setup_sandbox(tmp_path, pip_exit=0)
    first = subprocess.run(["bash", "scripts/setup.sh"], cwd=sandbox, capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    lines = first.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Transfer Lab is set up in .venv"), first.stdout
    assert "pip chatter" in (sandbox / ".venv" / "setup.log").read_text()
    again = subprocess.run(["bash", "scripts/setup.sh"], cwd=sandbox, capture_output=True, text=True, timeout=30)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")   # nothing changed: nothing said


def test_a_failed_setup_says_so_and_shows_the_end_of_pips_log(tmp_path):
    import subprocess

    sandbox = _setup_sandbox(tmp_path, pip_exit=1)
    result = subprocess.run(["bash", "scripts/setup.sh"], cwd=sandbox, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "Setting up Transfer Lab failed" in result.stderr and "pip chatter 10" in result.stderr
    assert not (sandbox / ".venv" / ".installed").exists()   # the next start tries again


def test_the_licence_is_an_spdx_expression_in_the_installed_metadata():
    """A licence table made setuptools print a screen of warnings; an SPDX string does not."""
    from importlib.metadata import metadata

    assert metadata("tl_ui")["License-Expression"] == "Apache-2.0"


def test_the_page_marks_online_models_unavailable_once_the_hub_is_known_unreachable(monkeypatch):
    from tl_ui.core import catalog
    from tl_ui.ui.model import shelf_choices

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    catalog.hub_reachable()
    labels = dict((value, label) for label, value in shelf_choices("image", offline_mode=False))
    assert "unavailable: no internet here" in labels["resnet18"]
    assert "unavailable" not in labels["efficientnet_lite0"]


# -- issue 32, item 6: small words -------------------------------------------------------------------
def test_data_summary_names_the_smallest_class_in_good_english(tmp_path):
    from tl_ui.data import load_dataset
    from tl_ui.ui.data import summary_md

    digits = load_dataset(sample_dataset_path("image"), tmp_path / "digits")
    text = summary_md(digits, "sample_digits.zip", [])
    assert "Smallest class: 30 examples." in text and "classe:" not in text


def test_a_switched_model_is_named_as_on_the_shelf():
    from tl_ui.core.catalog import DEFAULT_MODEL, get_model
    from tl_ui.ui.model import filtered_updates

    _, _, note = filtered_updates("text", DEFAULT_MODEL["image"], offline_mode=True)
    name = get_model(DEFAULT_MODEL["text"]).display_name
    assert f"switched to **{name}**" in note and DEFAULT_MODEL["text"] not in note.replace(name, "")


def test_an_empty_loss_plot_has_no_lone_tick():
    """Before the first point the pad rows have no epoch (a pad at epoch 0 drew a lone '0.000000' tick);
    once there are points, the x axis starts at 0 again."""
    from tl_ui.ui.train_view import TrainView, train_view

    for empty in (TrainView().loss_df(), TrainView().acc_df(), train_view([], "queued").loss_df()):
        assert set(empty["series"]) == {"training", "validation"} and empty["epoch"].isna().all()
    view = train_view([{"kind": "step", "epoch": 1, "step": 1, "total_steps": 4, "train_loss": 0.9}], "running")
    assert 0.0 in set(view.loss_df()["epoch"])


def test_the_page_header_does_not_promise_a_minute():
    from tl_ui.app.webapp import INTRO

    assert "about a minute" not in INTRO and "train in seconds" in INTRO
