"""Drive whole runs through the named API endpoints with gradio_client (app launched in-process)."""
import json
import zipfile

import pytest
from gradio_client import Client, handle_file

from tests.helpers.baselines import assert_beats_the_majority_class
from tests.helpers.common import TINY_IMAGE_OPTIONS, TINY_TEXT_OPTIONS


def new_client(url, **kwargs):
    return Client(url, verbose=False, analytics_enabled=False, **kwargs)


def train(client, model_id, dataset, strategy, epochs, options):
    job = client.submit(model_id, dataset, strategy, epochs, options, api_name="/train")
    statuses = [out[0] for out in job]
    status, metrics, run_id = job.result()
    return statuses, status, metrics, run_id


@pytest.fixture(scope="module")
def image_run(launched_app):
    client = new_client(launched_app)
    statuses, status, metrics, run_id = train(client, "efficientnet_lite0", None, "linear_probe", 3,
                                              TINY_IMAGE_OPTIONS)
    return client, statuses, status, metrics, run_id


@pytest.fixture(scope="module")
def text_run(launched_app):
    client = new_client(launched_app)
    statuses, status, metrics, run_id = train(client, "minilm_l6", None, "linear_probe", 3, TINY_TEXT_OPTIONS)
    return client, statuses, status, metrics, run_id


@pytest.fixture(scope="module")
def digit_image(tmp_path_factory):
    from tl_ui.data import sample_dataset_path

    out = tmp_path_factory.mktemp("digit")
    with zipfile.ZipFile(sample_dataset_path("image")) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".png") and "/7/" in n)
        path = out / "seven.png"
        path.write_bytes(zf.read(name))
    return path


def test_api_page_lists_the_named_endpoints(launched_app):
    info = new_client(launched_app).view_api(print_info=False, return_format="dict")
    names = set(info["named_endpoints"])
    assert {"/train", "/predict", "/runs", "/stop", "/download"} <= names
    train_params = [p["label"] for p in info["named_endpoints"]["/train"]["parameters"]]
    assert train_params == ["model_id", "dataset", "strategy", "epochs", "options_json"]


def test_image_run_end_to_end(image_run, digit_image):
    client, statuses, status, metrics, run_id = image_run
    assert metrics["state"] == "finished", metrics
    assert status.startswith("Finished")
    assert metrics["classes"] == [str(d) for d in range(10)]
    assert metrics["n_val"] > 0
    assert_beats_the_majority_class(metrics)
    assert metrics["run_id"] == run_id
    assert any(s.startswith(("Waiting in queue", "Preparing", "Epoch", "Computing")) for s in statuses)

    # every headline number comes with its interval and the record of which examples it is from
    low, high = metrics["accuracy_ci"]
    assert low <= metrics["accuracy"] <= high and metrics["ci_level"] == 0.95
    assert metrics["evaluation"]["reported_on"] == "test" and metrics["evaluation"]["n_reported"] == metrics["n_val"]
    assert {"temperature", "ece_before", "ece_after"} <= set(metrics["calibration"])

    answer = client.predict(run_id, handle_file(str(digit_image)), "", api_name="/predict")
    probs = answer["probabilities"]
    assert set(probs) == set(metrics["classes"])
    assert abs(sum(probs.values()) - 1.0) < 1e-4
    assert list(probs.values()) == sorted(probs.values(), reverse=True)  # most likely first
    assert answer["set_level"] == 0.9
    # a set exactly when the run kept enough validation examples for the 90% level; else a sentence says why
    from tl_ui.trust import min_calibration_size

    if metrics["conformal"]["n_calibration"] >= min_calibration_size(0.9):
        assert answer["prediction_set"] and set(answer["prediction_set"]) <= set(probs)
    else:
        assert answer["prediction_set"] is None and "too few" in answer["set_sentence"]
    assert answer["set_sentence"]

    runs = client.predict(api_name="/runs")
    assert [r["run_id"] for r in runs] == [run_id]
    assert runs[0]["state"] == "finished" and runs[0]["has_model"]


def test_text_run_end_to_end(text_run):
    client, statuses, status, metrics, run_id = text_run
    assert metrics["state"] == "finished", metrics
    assert metrics["classes"] == ["fresh", "rotten"]
    probs = client.predict(run_id, None, "A warm, funny and beautifully acted film.", api_name="/predict")
    assert set(probs["probabilities"]) == {"fresh", "rotten"}
    assert abs(sum(probs["probabilities"].values()) - 1.0) < 1e-4


def test_downloads_are_a_usable_model(image_run, tmp_path):
    client, *_, run_id = image_run
    zip_path = client.predict(run_id, "model", api_name="/download")
    with zipfile.ZipFile(zip_path) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
    assert {"config.json", "model.safetensors", "README.md"} <= names
    run_json = client.predict(run_id, "run.json", api_name="/download")
    config = json.loads(open(run_json, encoding="utf-8").read())
    assert config["model_id"] == "efficientnet_lite0" and config["max_examples"] == 40
    card = client.predict(run_id, "card", api_name="/download")
    assert "efficientnet" in open(card, encoding="utf-8").read().lower()


def test_errors_come_back_in_plain_words(launched_app, tmp_path):
    client = new_client(launched_app)
    with pytest.raises(Exception, match="neither a model on the shelf"):
        client.predict("not a model!", None, "linear_probe", 1, "", api_name="/train")
    bad = tmp_path / "one_class.csv"
    bad.write_text("text,label\n" + "".join(f"note {i},flu\n" for i in range(10)), encoding="utf-8")
    with pytest.raises(Exception) as info:
        client.predict("minilm_l6", handle_file(str(bad)), "linear_probe", 1, "", api_name="/train")
    assert "Traceback" not in str(info.value)
    assert "class" in str(info.value).lower()
    with pytest.raises(Exception, match="Unknown setting"):
        client.predict("minilm_l6", None, "linear_probe", 1, '{"colour": "red"}', api_name="/train")
    with pytest.raises(Exception, match="There is no run"):
        client.predict("20990101-000000-abcdef", None, "hello", api_name="/predict")


def test_another_session_cannot_use_my_run(image_run, launched_app, digit_image):
    _, *_, run_id = image_run
    stranger = new_client(launched_app)
    with pytest.raises(Exception, match="There is no run"):
        stranger.predict(run_id, handle_file(str(digit_image)), "", api_name="/predict")
    with pytest.raises(Exception, match="There is no run"):
        stranger.predict(run_id, "model", api_name="/download")
    assert stranger.predict(api_name="/runs") == []
    assert stranger.predict(run_id, api_name="/stop")["stopped"] is False


@pytest.fixture(scope="module")
def site_zip(tmp_path_factory):
    """Another 'site': 40 sample digits (4 of each class), their contrast cut, as a zip of class folders."""
    from PIL import Image, ImageEnhance

    from tl_ui.data import sample_dataset_path

    out = tmp_path_factory.mktemp("site")
    path = out / "site_b.zip"
    taken: dict[str, int] = {}
    with zipfile.ZipFile(sample_dataset_path("image")) as source, zipfile.ZipFile(path, "w") as target:
        for name in sorted(source.namelist())[::-1]:   # from the end: mostly not the tiny run's examples
            parts = name.split("/")
            if not name.endswith(".png") or len(parts) < 2 or taken.get(parts[-2], 0) >= 4:
                continue
            taken[parts[-2]] = taken.get(parts[-2], 0) + 1
            (out / parts[-1]).write_bytes(source.read(name))
            image = ImageEnhance.Contrast(Image.open(out / parts[-1]).convert("L")).enhance(0.4)
            image.save(out / parts[-1])
            target.write(out / parts[-1], f"site_b/{parts[-2]}/{parts[-1]}")
    assert sum(taken.values()) == 40
    return path


def test_validate_recalibrate_and_predict_batch_through_the_api_for_the_owner_only(image_run, launched_app, site_zip,
                                                                                     digit_image):
    """/validate (as before, and with {"recalibrate": true}), /predict_batch, and the recalibrated run used like any
    run (/runs, /download, /predict); another session's calls are refused as for every endpoint. Over a minute on a
    shared machine: each long request (two checks, a batch, a recalibration) starts a worker of its own that loads
    torch and the model, as in production."""
    import csv

    client, *_, run_id = image_run
    params = new_client(launched_app).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["label"] for p in params["/validate"]["parameters"]] == ["run_id", "new_data", "options_json"]
    report, csv_path = client.predict(run_id, handle_file(str(site_zip)), api_name="/validate")   # 2 arguments
    assert report["run_id"] == run_id and report["n"] == 40 and "recalibration" not in report
    assert report["accuracy_ci"][0] <= report["accuracy"] <= report["accuracy_ci"][1]
    with open(csv_path, newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 40

    summary, table = client.predict(run_id, handle_file(str(site_zip)), api_name="/predict_batch")
    assert summary["n"] == 40
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40 and {"item", "predicted", "prediction_set", "unlike_training_data"} <= set(rows[0])
    assert all(not r["item"].startswith("/") for r in rows)

    report, _ = client.predict(run_id, handle_file(str(site_zip)), '{"recalibrate": true, "site": "Site B"}',
                               api_name="/validate")
    done = report["recalibration"]
    assert done["parent_run_id"] == run_id and done["site"] == "Site B" and "files" not in done
    block = done["recalibration"]
    assert block["n_fit"] + block["n_report"] == 40 and block["sentence"].startswith(f"Refitted on {block['n_fit']} of")
    runs = {r["run_id"]: r for r in client.predict(api_name="/runs")}
    assert runs[done["run_id"]]["recalibrated_from"] == run_id and runs[done["run_id"]]["has_model"]
    zip_path = client.predict(done["run_id"], "model", api_name="/download")
    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith("transfer_lab.json"))))
        assert any(n.endswith("model.safetensors") for n in zf.namelist())
    assert manifest["parent_run_id"] == run_id and manifest["site_temperature"] > 0
    answer = client.predict(done["run_id"], handle_file(str(digit_image)), "", api_name="/predict")
    assert abs(sum(answer["probabilities"].values()) - 1.0) < 1e-4

    stranger = new_client(launched_app)
    for call in (lambda: stranger.predict(run_id, handle_file(str(site_zip)), api_name="/validate"),
                 lambda: stranger.predict(run_id, handle_file(str(site_zip)), '{"recalibrate": true}',
                                          api_name="/validate"),
                 lambda: stranger.predict(run_id, handle_file(str(site_zip)), api_name="/predict_batch"),
                 lambda: stranger.predict(done["run_id"], "model", api_name="/download")):
        with pytest.raises(Exception, match="There is no run"):
            call()
    assert stranger.predict(api_name="/runs") == []


def test_stop_through_the_api(launched_app):
    client = new_client(launched_app)
    job = client.submit("efficientnet_lite0", None, "partial", 50,
                        '{"max_examples": 60, "image_size": 64}', api_name="/train")
    run_id = None
    for status, metrics, rid in job:
        run_id = rid
        if status.startswith("Epoch") or "step" in status:
            break
    assert client.predict(run_id, api_name="/stop")["stopped"] is True
    status, metrics, _ = job.result()
    assert metrics["state"] == "stopped", metrics
    assert status.startswith("Stopped")


# -- what the page shows for engine events (no server needed) ----------------------------------
def test_train_view_turns_events_into_status_plots_and_log():
    from tl_ui.ui.train_view import train_view

    events = [
        {"kind": "started", "run_id": "r", "model_id": "m", "strategy": "partial", "n_train": 8, "n_val": 2,
         "classes": ["a", "b"], "epochs": 2, "total_steps": 4, "trainable_params": 10, "total_params": 100},
        {"kind": "step", "epoch": 1, "step": 1, "total_steps": 4, "train_loss": 0.9, "eta_s": 30},
        {"kind": "step", "epoch": 1, "step": 2, "total_steps": 4, "train_loss": 0.7, "eta_s": 20},
        {"kind": "epoch", "epoch": 1, "epochs": 2, "train_loss": 0.8, "train_accuracy": 0.5, "val_loss": 0.75,
         "val_accuracy": 0.5, "eta_s": 20, "is_best": True, "elapsed_s": 2},
    ]
    view = train_view(events, "running")
    assert "epoch 1 of 2" in view.status and "20 s left" in view.status
    assert 0.45 < view.fraction < 0.55
    loss = view.loss_df()
    # the same series names (and so the same colours) in both plots
    assert set(loss["series"]) == {"training", "validation"}
    assert list(loss[(loss.series == "training") & loss.loss.notna()]["epoch"]) == [0.5, 1.0]
    acc = view.acc_df()
    assert set(acc["series"]) == {"training", "validation"}
    assert list(acc[acc.series == "validation"]["accuracy"].dropna()) == [0.5]
    assert "Epoch 1/2" in view.log_text()
    # is_best means the lowest validation loss so far (the weights the run keeps), not "best"
    assert "lowest validation loss so far" in view.log_text() and "best so far" not in view.log_text()

    assert "Waiting in queue: position 3" in train_view([], "queued", position=3).status
    finished = train_view(events + [{"kind": "finished", "run_id": "r", "accuracy": 0.9, "elapsed_s": 5,
                                     "best_epoch": 2}], "finished")
    assert finished.status.startswith("**Finished") and finished.fraction == 1.0
    # the training loop (EpochEnd.elapsed_s) and the whole run (RunFinished.elapsed_s) are named apart
    assert "Training loop 2 s; whole run 5 s" in finished.log_text()
    stopped = train_view(events + [{"kind": "stopped", "message": "Stopped by the user at epoch 1, step 2. "
                                                               "No model was saved."}], "stopped")
    assert "Stopped" in stopped.status and stopped.status.count("Stopped") == 1
    failed = train_view([{"kind": "failed", "message": "Your data has one class."}], "failed")
    assert "Failed" in failed.status and "one class" in failed.status
    # before any point exists every series is still present (a NaN row), so the legend is complete
    assert set(train_view([], "running").loss_df()["series"]) == {"training", "validation"}
    # the probe's embedding cache shows its progress while the run prepares
    preparing = train_view([events[0], {"kind": "progress", "stage": "embeddings", "done": 120, "total": 300,
                                        "message": "Computing embeddings once"}], "running")
    assert "Computing embeddings 120/300" in preparing.status
    assert "120/300" in preparing.progress_text


def test_unexpected_errors_are_not_shown_raw(caplog):
    from tl_ui.data import DataError
    from tl_ui.service.errors import GENERIC_ERROR, user_message

    assert user_message(DataError("The zip has no class folders.")) == "The zip has no class folders."
    assert user_message(KeyError("internal detail")) == GENERIC_ERROR
    assert "internal detail" in caplog.text  # ...but it is in the server log


def test_confusion_heat_map_html():
    from tl_ui.ui.results_html import confusion_html

    html = confusion_html([[5, 1], [0, 4]], ["cat", "<dog>"])
    assert "&lt;dog&gt;" in html and "<table>" in html and html.count("<td") == 4


# -- page handlers without a server (a fake train function, real data loading) ---------------
class FakeRequest:
    """A gr.Request as handlers see it: a (made-up, so unsigned) cookie, the page's connection id."""

    def __init__(self, sid, username=None, session_hash=None):
        from types import SimpleNamespace

        self.cookies = {"tl_sid": sid}
        self.username = username
        self.session_hash = session_hash or "hash-" + sid
        self.client = SimpleNamespace(host="127.0.0.1")


def _slow_fake_train(config, run_dir, on_event, should_stop, dataset=None):
    import time as _time
    from types import SimpleNamespace

    run_dir.mkdir(parents=True, exist_ok=True)
    on_event({"kind": "started", "run_id": run_dir.name, "epochs": 1, "total_steps": 100, "model_id": "m",
              "strategy": "s", "n_train": 1, "n_val": 1, "classes": dataset.classes})
    for step in range(1, 101):
        if should_stop():
            on_event({"kind": "stopped", "run_id": run_dir.name, "message": "Stopped by you."})
            return SimpleNamespace(status="stopped", message="Stopped by you.")
        _time.sleep(0.02)
        on_event({"kind": "step", "epoch": 1, "step": step, "total_steps": 100, "train_loss": 1.0, "eta_s": 1})
    return SimpleNamespace(status="finished", message="")


@pytest.fixture
def page_handlers(tmp_path):
    from tl_ui.service.lab import Lab
    from tl_ui.core.settings import Settings
    from tl_ui.ui.handlers import Handlers

    lab = Lab(Settings(runs_dir=tmp_path / "runs"), train_fn=_slow_fake_train)
    yield Handlers(lab)
    lab.close()


def _form(h, state, **overrides):
    """The page's form as its handlers receive it (without a page, each key stands for itself)."""
    from tl_ui.ui.strategy import OPTION_KEYS

    values = {"model_choice": "efficientnet_lite0", "hub_id": "", "strategy_choice": "linear_probe",
              "epochs": 2, "learning_rate": 0.003, "batch_size": 16, "image_size": 0, "val_fraction": 0.2,
              "seed": 0, "random_init": False, "unfreeze_groups": 2, "lora_rank": 8, "max_examples": 0,
              "set_level": 0.9, "compare_scratch": False}
    values.update(overrides)
    return {**{k: values.get(k) for k in ["model_choice", "hub_id", "strategy_choice", *OPTION_KEYS]},
            "session": state}


def test_start_needs_data_and_a_reopened_page_finds_the_run(page_handlers):
    from tl_ui.ui.state import SessionState

    h = page_handlers
    req = FakeRequest("browser-one-aaaaaaaaaaaa")
    token = h.lab.identity.new_token()     # the page's stored owner token (cookies blocked or not)
    out = h.start(_form(h, SessionState()), req)  # no data loaded: no silent training on a sample
    assert "Load a dataset first" in out["train_status"] and not out["session"].job_id
    loaded = h.on_load(SessionState(), token, req)["session"]
    state = h.sample_loader("image")("efficientnet_lite0", loaded, req)["session"]  # one click on the sample
    out = h.start(_form(h, state), req)
    state = out["session"]
    assert state.dataset is not None and state.dataset.modality == "image"  # the sample digits
    assert state.job_id
    # the tab is closed; the same browser opens the page again (a new connection, the same stored token)
    req2 = FakeRequest("browser-one-aaaaaaaaaaaa", session_hash="page-two")
    reopened = h.on_load(SessionState(), token, req2)
    assert reopened["session"].job_id == state.job_id
    # another browser does not
    other_req = FakeRequest("browser-two-bbbbbbbbbbbb", session_hash="page-three")
    other = h.on_load(SessionState(), None, other_req)
    assert other["session"].job_id == ""
    assert "no run" in h.stop(other["session"], other_req)["train_status"].lower()
    # stop from the reopened page, then the session can start again
    assert "Stopping" in h.stop(reopened["session"], req2)["train_status"]
    job = h.lab.runner.wait(state.job_id, timeout=10)
    assert job.state == "stopped"
    assert "Stopped" in h.tick(reopened["session"], req2)["train_status"]
    # the reopened page holds no data (the data lives in the page's session): it asks for some
    refused = h.start(_form(h, reopened["session"]), req2)
    assert "Load a dataset first" in refused["train_status"]
    again_state = h.sample_loader("image")("efficientnet_lite0", reopened["session"], req2)["session"]
    again = h.start(_form(h, again_state), req2)
    assert again["session"].job_id != state.job_id


def test_start_refuses_a_model_for_the_wrong_kind_of_data(page_handlers):
    from tl_ui.ui.state import SessionState

    h = page_handlers
    req = FakeRequest("browser-three-cccccccccccc")
    loaded = h.sample_loader("text")("efficientnet_lite0", SessionState(), req)
    state = loaded["session"]
    assert state.modality == "text"
    assert loaded["model_choice"]["value"] == "minilm_l6"  # the model choice follows the data
    assert loaded["strategy_choice"] == "lora"  # ...and so does the strategy (texts: LoRA)
    out = h.start(_form(h, state, model_choice="efficientnet_lite0"), req)
    status = out["train_status"]
    assert "Cannot start" in status and "reads images" in status and "texts" in status


def test_a_run_survives_its_caller_going_away(launched_app, launched_server):
    import time

    client = new_client(launched_app)
    job = client.submit("minilm_l6", None, "linear_probe", 2, TINY_TEXT_OPTIONS, api_name="/train")
    deadline = time.time() + 60
    while not job.outputs() and time.time() < deadline:
        time.sleep(0.05)
    run_id = job.outputs()[0][2]
    job.cancel()  # the caller closes the connection (like closing the browser tab)
    finished = launched_server.lab.runner.wait(run_id, timeout=120)
    assert finished.state == "finished"
    runs = {r["run_id"]: r for r in client.predict(api_name="/runs")}
    assert runs[run_id]["state"] == "finished" and runs[run_id]["has_model"]


def test_a_failed_upload_keeps_and_names_the_loaded_data(page_handlers, tmp_path):
    from tl_ui.ui.state import SessionState

    h = page_handlers
    req = FakeRequest("browser-four-dddddddddddd")
    bad = tmp_path / "holiday_photos.zip"
    bad.write_bytes(b"not a zip at all\n" * 10)
    first = h.on_upload(str(bad), "", "", "", "efficientnet_lite0", SessionState(), req)
    assert "not a zip" in first["data_error"] and "still using" not in first["data_error"]
    assert first["session"].dataset is None
    state = h.sample_loader("image")("efficientnet_lite0", first["session"], req)["session"]
    assert state.dataset is not None
    out = h.on_upload(str(bad), "", "", "", "efficientnet_lite0", state, req)
    assert out["session"].dataset is state.dataset  # the old data stays active...
    assert "still using the sample images" in out["data_error"]  # ...and the page says so


def test_strategy_info_explains_the_text_default_and_estimates_time(page_handlers):
    from tl_ui.ui import strategy as strategy_step
    from tl_ui.ui.state import SessionState

    h = page_handlers
    req = FakeRequest("browser-five-eeeeeeeeeeee")
    state = h.sample_loader("text")("minilm_l6", SessionState(), req)["session"]
    options = {**{k: None for k in strategy_step.OPTION_KEYS}, "strategy": "lora"}
    md = strategy_step.strategy_info_md(h.lab, "minilm_l6", options, state)
    assert "LoRA is preselected for your 400 texts" in md and "Rough time on this computer" in md
    assert md.count(strategy_step.STRATEGY_HELP["lora"]) == 1
