"""Every model behind a process boundary (issue 36): the inference workers (tl_ui/jobs/inference) with
real trained runs and real worker processes. Failure stays local and is said in one sentence: a worker
killed with SIGKILL while a user waits, a model too big for the memory cap, a request past its time
cap, a person over their cap; the next click works and the training queue goes on. Kept models are
counted by bytes; models load only from inside the runs folder."""
from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import pytest

from tl_ui.core.config import RunConfig
from tl_ui.data import sample_dataset_path
from tl_ui.jobs.inference import Code, InferenceError
from tl_ui.jobs.supervisor import Ending, ended_message

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny image run and a tiny text run, trained once for the module (real engine runs)."""
    from tl_ui.engine import train_run

    root = tmp_path_factory.mktemp("inference-runs")
    runs = {}
    for name, config in (("image", RunConfig(data_path=str(sample_dataset_path("image")), model_id="efficientnet_lite0",
                                             strategy="linear_probe", image_size=64, max_examples=60, epochs=3)),
                         ("text", RunConfig(data_path=str(sample_dataset_path("text")), model_id="minilm_l6",
                                            strategy="linear_probe", max_examples=40, epochs=3))):
        assert train_run(config, root / name).status == "finished"
        runs[name] = root / name
    return runs


def _lab(tmp_path, **settings):
    from tl_ui.service.lab import Lab
    from tl_ui.core.settings import Settings

    return Lab(Settings(runs_dir=tmp_path / "runs", **settings))


def _give(lab, owner, run_dir) -> str:
    """A copy of a trained run in `owner`'s folder (as if they had trained it); its run id."""
    run = lab.workspace.new_run(owner)
    shutil.copytree(run_dir, run.path)
    return run.id


def _mistake(lab, owner, run_id) -> str:
    run = lab.run(owner, run_id)
    return str(run.path / next(m["file"] for m in run.metrics()["mistakes"] if m.get("file")))


def _wait_for(condition, timeout=120.0, what="the condition"):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _long_request(lab, owner, run_id, n=200):
    """A request that keeps a worker busy for seconds: Grad-CAM maps of one mistake preview, many times over
    (the mistake maps verb, as 'Show what the model looked at' sends it, with more items)."""
    run = lab.run(owner, run_id)
    item = next(m for m in run.metrics()["mistakes"] if m.get("file"))
    return lambda: lab.ask_inference(owner.id, "mistake_maps", {"run_dir": str(run.path.resolve()), "items": [
        {"file": item["file"], "target": str(item["predicted"])}] * n})


def _in_thread(fn):
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - the test looks at what the user would see
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


@pytest.mark.slow
def test_a_killed_worker_costs_the_waiting_user_one_sentence_and_the_next_click_works(trained, tmp_path):
    from tl_ui.service.lab import UserError
    from tl_ui.service.owners import Owner

    lab = _lab(tmp_path)
    alice, bob = Owner("user", "alice"), Owner("user", "bob")
    try:
        image_run, text_run = _give(lab, alice, trained["image"]), _give(lab, bob, trained["text"])
        digit = _mistake(lab, alice, image_run)
        before = lab.predict(alice, image_run, image=digit)
        bob_before = lab.predict(bob, text_run, text="A warm and funny film.")
        worker = lab.inference.worker_pids()[0]
        # the training queue: a run goes through it while the inference worker dies and comes back
        sample = lab.load_sample(bob, "text")
        job = lab.start_run(bob, sample.dataset, sample.data_path, "minilm_l6",
                            {"strategy": "linear_probe", "max_examples": 40, "epochs": 2})

        thread, box = _in_thread(_long_request(lab, alice, image_run))
        _wait_for(lambda: lab.inference.describe()["workers"][0]["answering"] >= 1, what="the worker to be answering")
        os.kill(worker, signal.SIGKILL)
        thread.join(60)
        assert not thread.is_alive() and "value" not in box
        assert isinstance(box["error"], UserError)
        assert str(box["error"]) == ended_message("inference", Ending.CRASHED)   # one plain sentence
        assert "fresh one starts with your next click" in str(box["error"])

        # the next click works, in a fresh worker, with the same answer; the other user's too
        assert lab.predict(alice, image_run, image=digit) == before
        assert lab.predict(bob, text_run, text="A warm and funny film.") == bob_before
        assert lab.inference.worker_pids() and lab.inference.worker_pids()[0] != worker
        with pytest.raises(ProcessLookupError):   # the dead one was reaped, not left a zombie
            os.kill(worker, 0)
        done = lab.runner.wait(job.id, timeout=600)
        assert done.state == "finished", done.message
    finally:
        lab.close()


@pytest.mark.slow
def test_a_model_too_big_for_the_cap_is_refused_before_loading_with_its_size_and_the_cap(trained, tmp_path):
    from tl_ui.jobs.inference.kept import KeptModels
    from tl_ui.service.lab import UserError
    from tl_ui.service.owners import Owner

    lab = _lab(tmp_path, inference_memory_gb=0.05)
    alice = Owner("user", "alice")
    try:
        run_id = _give(lab, alice, trained["image"])
        with pytest.raises(UserError) as refused:
            lab.predict(alice, run_id, image=_mistake(lab, alice, run_id))
        message = str(refused.value)
        assert message.startswith("This run's model has ") and " million weights (" in message
        assert "more than the 0.05 GB the model server may use here (setting TL_INFERENCE_MEMORY_GB)" in message
        assert lab.inference.worker_pids() == []   # no worker was started, none was killed
        # the worker checks too, before it loads anything
        models = KeptModels(lab.workspace.root, 1 << 30, memory_gb=0.05)
        with pytest.raises(InferenceError) as in_worker:
            models.get(str(lab.run(alice, run_id).path))
        assert in_worker.value.code == Code.TOO_BIG and models.loads == 0
    finally:
        lab.close()


@pytest.mark.slow
def test_time_cap_and_per_user_cap_stay_with_their_request(trained, tmp_path, monkeypatch):
    """Alice's request past its time cap is stopped with a sentence (between maps: her worker goes on);
    meanwhile her second request is told she is over her cap, and Bob is answered."""
    from tl_ui.jobs.inference import pool
    from tl_ui.service.lab import UserError
    from tl_ui.service.owners import Owner

    monkeypatch.setattr(pool, "BUSY_WAIT_S", 0.5)
    lab = _lab(tmp_path, inference_max_seconds=4, inference_max_per_user=1)
    alice, bob = Owner("user", "alice"), Owner("user", "bob")
    try:
        image_run, text_run = _give(lab, alice, trained["image"]), _give(lab, bob, trained["text"])
        digit = _mistake(lab, alice, image_run)
        lab.predict(alice, image_run, image=digit)
        lab.predict(bob, text_run, text="fine")       # both models kept: the caps, not the loads, are timed
        worker = lab.inference.worker_pids()[0]
        thread, box = _in_thread(_long_request(lab, alice, image_run, n=2000))
        _wait_for(lambda: lab.inference.describe()["workers"][0]["answering"] >= 1, what="the long request")
        with pytest.raises(UserError, match="setting TL_INFERENCE_MAX_PER_USER"):
            lab.predict(alice, image_run, image=digit)
        assert set(lab.predict(bob, text_run, text="A moving film.")["probabilities"]) == {"fresh", "rotten"}
        thread.join(60)
        assert str(box.get("error")) == ended_message("inference", Ending.TIME, seconds=4)
        assert lab.inference.worker_pids() == [worker]   # it stopped when asked: nothing else was ended
        assert lab.predict(alice, image_run, image=digit)["probabilities"]
    finally:
        lab.close()


@pytest.mark.slow
def test_kept_models_go_least_recently_used_first_by_bytes_and_only_from_the_runs_folder(trained, tmp_path):
    from tl_ui.jobs.inference.kept import KeptModels
    from tl_ui.jobs.inference.sizes import model_footprint

    root = tmp_path / "runs"
    copies = []
    for name in ("a", "b", "c"):
        shutil.copytree(trained["image"], root / name)
        copies.append(str(root / name))
    footprint = model_footprint(copies[0])
    models = KeptModels(root, budget_bytes=0, memory_gb=0)
    one = models.get(copies[0]).bytes
    # the header's count: the model's own parameters and buffers, plus its familiarity reference
    familiarity = (root / "a" / "model" / "familiarity.safetensors").stat().st_size
    assert one <= footprint.bytes <= one + familiarity
    assert models.describe()["kept"] == [] and models.loads == 1   # larger than a zero budget: answered, not kept

    models = KeptModels(root, budget_bytes=int(2.5 * one))
    models.get(copies[0])
    models.get(copies[1])
    models.get(copies[0])            # used again: now the most recent
    models.get(copies[2])            # room for two: the least recently used (b) goes
    assert [os.path.basename(k) for k in models.describe()["kept"]] == ["a", "c"] and models.loads == 3
    models.get(copies[0])
    assert models.loads == 3         # still kept: not loaded again
    with pytest.raises(InferenceError) as refused:
        models.get(str(trained["text"]))   # a real model, but outside this runs folder
    assert refused.value.code == Code.REFUSED


@pytest.mark.slow
def test_the_worker_itself_refuses_models_outside_the_runs_folder(trained, tmp_path):
    """The pool refuses before sending; a request that reaches the worker anyway is refused there too."""
    from tl_ui.jobs.inference import InferenceCaps, InferencePool

    (tmp_path / "runs").mkdir()
    inference = InferencePool(InferenceCaps(), tmp_path / "runs")
    try:
        with pytest.raises(InferenceError) as in_pool:
            inference.call("someone", "load", {"run_dir": str(trained["image"])})
        assert in_pool.value.code == Code.REFUSED and inference.worker_pids() == []
        request = inference.slots[0].submit("sneaky", "load", {"run_dir": str(trained["image"])})
        assert request.done.wait(120)
        assert request.outcome["code"] == Code.REFUSED and "not in this Transfer Lab's runs folder" in \
            request.outcome["message"]
        assert inference.stats()[0]["loads"] == 0
    finally:
        inference.close()


def test_a_missing_explain_extra_keeps_its_message(tmp_path, monkeypatch):
    """The worker names the missing package; the service says it as it always has."""
    from tl_ui.service.lab import UserError

    lab = _lab(tmp_path)
    try:
        def missing(*args, **kwargs):
            raise InferenceError(Code.MISSING_EXTRA, "No module named 'captum'", missing="captum")

        monkeypatch.setattr(lab.inference, "call", missing)
        with pytest.raises(UserError) as refused:
            lab.ask_inference("user:a", "explain", {})
        assert str(refused.value) == ("Explanations are not installed on this server (captum is missing). The "
                                      "prediction above still holds; ask whoever runs Transfer Lab to install the "
                                      "'explain' extra (pip install -e '.[explain]').")
    finally:
        lab.close()


@pytest.mark.slow
def test_the_advisor_streams_progress_and_stops_when_asked(tmp_path):
    """A long request in a worker of its own: its progress reaches the caller, Stop ends it with a sentence."""
    from tl_ui.data import load_dataset, stratified_subset
    from tl_ui.service.lab import UserError
    from tl_ui.service.owners import Owner

    lab = _lab(tmp_path)
    owner = Owner("user", "advised")
    digits = stratified_subset(load_dataset(str(sample_dataset_path("image")), tmp_path / "d"), 30, 0)
    seen = []
    try:
        with pytest.raises(UserError) as stopped:
            lab.advise(owner, digits, {"image_size": 32}, on_progress=lambda i, n, message: seen.append((i, n)),
                       should_stop=lambda: bool(seen))
        assert str(stopped.value) == "Stopped: the models were not ranked."
        assert seen and seen[0][0] == 1 and seen[0][1] >= 3
        assert lab.inference.worker_pids() == []   # the advisor's worker is not the kept-model worker
    finally:
        lab.close()
