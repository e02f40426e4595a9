"""The Ray executor on a local Ray started here (2 CPUs, no dashboard, nothing downloaded): runs go
through the app as Ray tasks with live statuses, queue positions and a working Stop; a large batch to score is
split across Ray tasks (issue 34)."""
import json
import time
from pathlib import Path

import httpx
import pytest
import ray

from tests.helpers.common import TINY_IMAGE_OPTIONS
from tl_ui.core.runfolder import RunFolder


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory):
    from tl_ui.app.server import start_in_thread
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    settings = Settings(runs_dir=tmp_path_factory.mktemp("ray-runs"), max_jobs=1, executor="ray")
    server = start_in_thread(build_app(settings), settings=settings)
    try:
        yield server
    finally:
        server.stop()
        ray.shutdown()


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False)


def _wait_status(job, predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        outputs = job.outputs()
        if any(predicate(out[0]) for out in outputs):
            return outputs
        if job.done():
            break
        time.sleep(0.2)
    raise AssertionError(f"no such status; got {[o[0] for o in job.outputs()][-5:]}")


def test_runs_train_as_ray_tasks_with_live_events_queue_and_stop(ray_server):
    url = ray_server.url
    assert httpx.get(url + "healthz", timeout=10).json()["executor"] == "ray"
    long_options = json.dumps({**json.loads(TINY_IMAGE_OPTIONS), "seed": 2})
    first, second = _client(url), _client(url)
    long_job = first.submit("efficientnet_lite0", None, "partial", 50, long_options, api_name="/train")
    _wait_status(long_job, lambda s: bool(s), 60)
    short_job = second.submit("efficientnet_lite0", None, "partial", 2, TINY_IMAGE_OPTIONS, api_name="/train")

    # the second waits its turn, and is told its place
    _wait_status(short_job, lambda s: "Waiting in queue: position 1" in s, 60)
    # live events of the first come from the Ray task (events.jsonl in the shared runs folder)
    _wait_status(long_job, lambda s: s.startswith("Epoch"), 240)
    long_id = long_job.outputs()[-1][2]
    run = RunFolder(next(Path(ray_server.lab.settings.runs_dir).glob(f"*/runs/{long_id}")))
    status = run.status()
    assert status["state"] == "running" and status["executor"] == "ray" and status["worker_pid"] > 0

    t0 = time.time()
    assert first.predict(long_id, api_name="/stop") == {"run_id": long_id, "stopped": True}
    _, long_metrics, _ = long_job.result(timeout=120)
    assert long_metrics["state"] == "stopped" and time.time() - t0 < 60
    assert not run.has_model

    status_text, metrics, run_id = short_job.result(timeout=300)
    assert metrics["state"] == "finished", metrics.get("message")
    assert status_text.startswith("Finished") and metrics["seq"] > long_metrics["seq"]
    # its epochs came from the Ray task as events (a 2-epoch run may end between two of the page's polls, so its
    # streamed statuses need not show one; the long run's above did)
    short_run = RunFolder(next(Path(ray_server.lab.settings.runs_dir).glob(f"*/runs/{run_id}")))
    assert sum(1 for event in short_run.events() if event.kind == "epoch") == 2
    assert second.predict(api_name="/runs")[0]["has_model"]


def test_a_ray_task_that_ignores_stop_is_cancelled(ray_server, tmp_path):
    from tl_ui.jobs.executors import RayExecutor
    from tl_ui.jobs.runner import Runner

    runner = Runner(1, executor=RayExecutor(target="tests.integration.test_executors:stubborn_train", stop_grace_s=0.5,
                                            start_now=False))
    try:
        job = runner.submit({}, tmp_path / "stubborn", owner="me")
        deadline = time.time() + 90
        while not any(e["kind"] == "step" for e in job.events) and time.time() < deadline:
            time.sleep(0.1)
        assert runner.stop(job.id)
        assert runner.wait(job.id, 60).state == "stopped"
        assert "did not stop by itself" in job.message
        assert RunFolder(job.run_dir).status()["state"] == "stopped"
    finally:
        runner.shutdown(timeout=10)


def test_a_large_batch_is_split_across_ray_tasks_and_equals_the_single_worker(ray_server, tmp_path):
    """TL_EXECUTOR=ray: a batch is cut into parts, each scored in a Ray task of its own, joined in order; every row
    equals the single worker's (score_to_csv, which equals predict one input at a time); Stop keeps nothing.
    About two minutes on a shared 2-core machine: a tiny probe is trained here, and each of the three parts starts
    a Ray worker process that imports torch and loads the model, as it would on a cluster."""
    import csv
    import dataclasses

    from tl_ui.core.config import RunConfig
    from tl_ui.core.settings import Settings
    from tl_ui.data import load_dataset, sample_dataset_path, stratified_subset
    from tl_ui.data.unlabelled import load_inputs
    from tl_ui.engine import Predictor, train_run
    from tl_ui.engine.inference.batch import score_to_csv
    from tl_ui.jobs.inference import Code, InferenceError
    from tl_ui.jobs.inference.ray_scoring import SPLIT_AT, score_batch_in_ray, use_ray

    assert use_ray(Settings(runs_dir=tmp_path / "r", executor="ray"), SPLIT_AT)
    assert not use_ray(Settings(runs_dir=tmp_path / "r", executor="ray"), SPLIT_AT - 1)
    assert not use_ray(Settings(runs_dir=tmp_path / "r"), 10 * SPLIT_AT)
    digits = load_dataset(str(sample_dataset_path("image")), tmp_path / "digits")
    run_dir = tmp_path / "runs" / "probe"
    result = train_run(RunConfig(model_id="efficientnet_lite0", strategy="linear_probe", image_size=64, seed=1),
                       run_dir, dataset=stratified_subset(digits, 40, seed=1))
    assert result.status == "finished", result.message
    folder = tmp_path / "batch"
    folder.mkdir()
    for item in digits.items[-25:]:
        (folder / Path(item).name).write_bytes(Path(item).read_bytes())
    inputs = load_inputs(folder, tmp_path / "read")
    run = RunFolder(run_dir)
    seen = []
    written = score_batch_in_ray(run_dir, dataclasses.asdict(inputs), run.new_scores_folder(), max_image_pixels=10**8,
                                 part_size=10, on_progress=lambda d, t, m: seen.append(d))
    assert written["parts"] == 3 and written["n"] == 25 and seen[-1] == 25
    assert sorted(p.name for p in Path(written["folder"]).iterdir()) == ["predictions.csv", "predictions.xlsx"]
    single = score_to_csv(Predictor.load(run_dir), inputs.items, inputs.names, tmp_path / "single.csv", xlsx=False)
    with open(written["csv"], newline="") as a, open(single["csv"], newline="") as b:
        split_rows, single_rows = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert [r["item"] for r in split_rows] == [r["item"] for r in single_rows] == inputs.names
    for x, y in zip(split_rows, single_rows):
        assert x["predicted"] == y["predicted"] and x["prediction_set"] == y["prediction_set"]
        assert all(abs(float(x[k]) - float(y[k])) < 1e-5 for k in x if k.startswith("p_"))
    assert written["n_flagged"] == single["n_flagged"]

    stopped = run.new_scores_folder()
    with pytest.raises(InferenceError) as stop:
        score_batch_in_ray(run_dir, dataclasses.asdict(inputs), stopped, max_image_pixels=10**8, part_size=10,
                           should_stop=lambda: True)
    assert stop.value.code == Code.CANCELLED and not stopped.exists()
