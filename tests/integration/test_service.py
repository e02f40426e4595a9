"""The service layer: one translator for page, API and CLI; runs that replay exactly."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tl_ui.core.config import ConfigError, RunConfig

REPO = Path(__file__).resolve().parents[2]


class FakeRequest:
    def __init__(self, sid: str):
        self.username = None
        self.cookies = {"tl_sid": sid}
        self.session_hash = "hash"


def _record_config(config, run_dir, on_event=None, should_stop=None, dataset=None):
    """Stands in for the trainer (not under test here): the service has already written run.json."""
    return SimpleNamespace(status="finished", message="")


def _comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in ("data_path",)}


def test_translator_defaults_are_one_set_for_every_caller():
    empty = RunConfig.from_options({}, modality="image")
    form_like = RunConfig.from_options({"epochs": 0, "image_size": 0, "max_examples": 0, "learning_rate": None,
                                        "batch_size": "", "random_init": False}, modality="image")
    assert empty == form_like and empty.batch_size == RunConfig().batch_size
    assert empty.epochs == 30 and empty.learning_rate == 3e-3            # the strategy's defaults, filled in
    assert RunConfig.from_options({}, modality="text").strategy == "lora"  # texts: LoRA from every entry point
    assert RunConfig.from_options({}, modality="text", n_examples=40).strategy == "linear_probe"  # by the table
    with pytest.raises(ConfigError, match="SetFit works on texts only"):
        RunConfig.from_options({"strategy": "setfit"}, modality="image")
    with pytest.raises(ConfigError, match="Unknown setting.*colour"):
        RunConfig.from_options({"colour": "red"})
    with pytest.raises(ConfigError, match="batch size"):
        RunConfig.from_options({"batch_size": "eight"})


def test_page_api_and_cli_make_the_same_run_json(tmp_path):
    from tl_ui.data import sample_dataset_path
    from tl_ui.service.headless import prepare_run
    from tl_ui.core.settings import Settings
    from tl_ui.ui import api
    from tl_ui.app.webapp import build_app

    webapp = build_app(Settings(runs_dir=tmp_path / "runs"), train_fn=_record_config)
    lab = webapp.lab
    try:
        # the page: its own handlers, every form component at the value a user sees unchanged
        from tl_ui.ui.state import SessionState

        handlers = _page_handlers(webapp.demo)
        request = FakeRequest("page-aaaaaaaaaaaaaaaa")
        loaded = handlers.sample_loader("image")("efficientnet_lite0", SessionState(), request)
        values = loaded.values() if isinstance(loaded, dict) else loaded
        state = next(v for v in values if isinstance(v, SessionState))
        form = {comp: getattr(comp, "value", None) for comp in handlers.c.values()}
        form[handlers.c["session"]] = state
        started = handlers.start(form, request)
        page_run = lab.runner.get(started[handlers.c["session"]].job_id).run_dir   # keyed by component

        # the API: no options at all
        owner = lab.owner(FakeRequest("api-bbbbbbbbbbbbbbbbb"))
        job = api._submit(lab, owner, "efficientnet_lite0", None, "", 0, "")
        api_run = job.run_dir
        lab.runner.wait(job.id, timeout=30)
    finally:
        lab.close()
    # the CLI: only the data
    cli_config, _ = prepare_run({"data_path": str(sample_dataset_path("image"))})

    page_json = json.loads((page_run / "run.json").read_text())
    api_json = json.loads((api_run / "run.json").read_text())
    assert _comparable(page_json) == _comparable(api_json) == _comparable(cli_config.to_dict())
    assert page_json["batch_size"] == 8 and page_json["data_sha256"]


def _page_handlers(page):
    """The Handlers object whose bound methods the page's events call."""
    for fn in page.fns.values():
        owner = getattr(fn.fn, "__self__", None)
        if owner is not None and getattr(owner, "c", None):
            return owner
    raise AssertionError("the page's handlers were not found")


def test_a_run_replays_exactly_after_its_upload_is_deleted(tmp_path):
    """The data a run trained on is kept by content while the run exists: deleting the uploads
    (as the scheduled clean-up does) does not break `train --config run.json`."""
    from tl_ui.data import sample_dataset_path
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings

    lab = Lab(Settings(runs_dir=tmp_path / "runs", max_images=500))
    owner = Owner("user", "replayer")
    upload = tmp_path / "my digits.zip"
    shutil.copyfile(sample_dataset_path("image"), upload)
    try:
        outcome = lab.load_data(owner, upload, upload.name)
        assert outcome.error == "" and "uploads" in outcome.data_path
        job = lab.start_run(owner, outcome.dataset, outcome.data_path, "efficientnet_lite0",
                            {"max_examples": 40, "image_size": 64, "epochs": 3, "seed": 2})
        job = lab.runner.wait(job.id, timeout=300)
        assert job.state == "finished", job.message
    finally:
        lab.close()
    run_json = job.run_dir / "run.json"
    recorded = json.loads(run_json.read_text())
    assert "/datasets/" in recorded["data_path"] and recorded["limits"]["max_files"] == 500
    shutil.rmtree(lab.workspace.root / owner.key / "uploads")

    replay = subprocess.run([sys.executable, "-m", "tl_ui", "train", "--config", str(run_json),
                             "--out", str(tmp_path / "replay"), "--quiet"], capture_output=True, text=True,
                            cwd=REPO, timeout=600)
    assert replay.returncode == 0, replay.stderr
    original = json.loads((job.run_dir / "metrics.json").read_text())
    replayed = json.loads((tmp_path / "replay" / "metrics.json").read_text())
    for key in ("accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "n_val", "best_epoch", "confusion_matrix"):
        assert replayed[key] == original[key], key
    assert json.loads((tmp_path / "replay" / "run.json").read_text())["limits"] == recorded["limits"]


def test_a_queued_run_is_on_disk_and_shown_interrupted_after_a_restart(tmp_path):
    import threading
    from types import SimpleNamespace

    from tl_ui.data import sample_dataset_path
    from tl_ui.core.runfolder import RunFolder
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings

    release = threading.Event()

    def blocking_train(config, run_dir, on_event=None, should_stop=None, dataset=None):
        release.wait(30)   # holds the only slot, so the next run waits in the queue
        return SimpleNamespace(status="finished", message="")

    settings = Settings(runs_dir=tmp_path / "runs", max_jobs=1)
    lab = Lab(settings, train_fn=blocking_train)
    owner = Owner("user", "queue")
    sample = lab.load_sample(owner, "image")
    first = lab.start_run(owner, sample.dataset, sample.data_path, "efficientnet_lite0", {})
    second = lab.start_run(owner, sample.dataset, sample.data_path, "efficientnet_lite0", {})
    assert RunFolder(second.run_dir).state() == "queued"          # on disk from the moment it is accepted
    restarted = Lab(settings)                                      # the server comes back (the old one "crashed")
    try:
        assert second.run_dir in restarted.recovered
        info = {i.run_id: i for i in restarted.list_runs(owner)}[second.id]
        assert info.state == "interrupted" and "Start it again" in info.message
    finally:
        release.set()
        lab.close()
        restarted.close()
    assert first.id != second.id
