"""Runs in worker processes (tl_ui/jobs/executors): real processes, a real tiny engine run, the memory and
time caps, Stop (asked, then terminate, then kill), and the runs-folder lock."""
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.helpers.common import REPO, TINY_IMAGE_OPTIONS
from tl_ui.jobs.executors import UNEXPECTED_END, ProcessExecutor
from tl_ui.core.runfolder import RunFolder
from tl_ui.jobs.runner import Runner

HERE = "tests.integration.test_executors"   # this module, as the worker process imports it


# -- stand-in train functions that run inside the worker process (no torch) ---------------------
def _record(run_dir, **event):
    """As the engine does: one JSON line per event in events.jsonl."""
    with RunFolder(run_dir).open_event_log() as fh:
        fh.write(json.dumps({"time": time.time(), **event}) + "\n")


def patient_train(config, run_dir, on_event, should_stop, dataset=None):
    """A step every 50 ms until asked to stop."""
    _record(run_dir, kind="started", run_id=Path(run_dir).name)
    for step in range(1, 100_000):
        if should_stop():
            message = f"Stopped by the user at epoch 1, step {step - 1}. No model was saved."
            _record(run_dir, kind="stopped", run_id=Path(run_dir).name, epoch=1, step=step - 1, message=message)
            RunFolder(run_dir).set_status("stopped", message)
            return SimpleNamespace(status="stopped", message=message)
        time.sleep(0.05)
        _record(run_dir, kind="step", epoch=1, step=step, total_steps=100_000, train_loss=1.0)


def stubborn_train(config, run_dir, on_event, should_stop, dataset=None):
    """Ignores Stop and SIGTERM: sleeps inside C."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _record(run_dir, kind="started", run_id=Path(run_dir).name)
    _record(run_dir, kind="step", epoch=1, step=1, total_steps=10, train_loss=1.0)
    ctypes.CDLL(None).sleep(600)


def quick_train(config, run_dir, on_event, should_stop, dataset=None):
    """Finishes at once, saying which process it ran in."""
    print(f"trained in process {os.getpid()}", flush=True)
    _record(run_dir, kind="started", run_id=Path(run_dir).name)
    RunFolder(run_dir).set_status("finished", "")
    return SimpleNamespace(status="finished", message="")


# -- helpers ------------------------------------------------------------------------------------
def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def tiny_image_run(**options):
    from tl_ui.data import sample_dataset_path
    from tl_ui.service.headless import prepare_run

    return prepare_run({"model_id": "efficientnet_lite0", "data_path": str(sample_dataset_path("image")),
                        **json.loads(TINY_IMAGE_OPTIONS), **options})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def runners():
    made = []

    def make(*args, **kwargs):
        made.append(Runner(*args, **kwargs))
        return made[-1]

    yield make
    for runner in made:
        runner.shutdown(timeout=10)


# -- a worker that dies ---------------------------------------------------------------------------
def test_killed_worker_fails_its_run_and_the_next_job_finishes(tmp_path, runners):
    torch_before = "torch" in sys.modules
    runner = runners(1, executor=ProcessExecutor())
    assert runner.executor_name == "process"
    long_config, dataset = tiny_image_run(strategy="partial", epochs=50)
    short_config, _ = tiny_image_run(strategy="partial", epochs=1)
    doomed = runner.submit(long_config, tmp_path / "doomed", owner="a", dataset=dataset)
    nxt = runner.submit(short_config, tmp_path / "next", owner="b", dataset=dataset)

    wait_for(lambda: any(e["kind"] == "step" for e in doomed.events), 180, "the first training step")
    status = RunFolder(doomed.run_dir).status()
    assert status["state"] == "running" and status["worker_pid"] != os.getpid()
    (doomed.run_dir / ".model.partial-0000").mkdir()    # as if the kill hit during the export
    os.kill(status["worker_pid"], signal.SIGKILL)

    assert runner.wait(doomed.id, 60).state == "failed"
    assert doomed.message == UNEXPECTED_END
    assert doomed.events[-1]["kind"] == "failed" and doomed.events[-1]["message"] == UNEXPECTED_END
    on_disk = RunFolder(doomed.run_dir)
    assert on_disk.status()["state"] == "failed" and on_disk.status()["message"] == UNEXPECTED_END
    assert not (doomed.run_dir / "model").exists() and not list(doomed.run_dir.glob(".model.partial-*"))

    assert runner.wait(nxt.id, 240).state == "finished", nxt.message
    assert RunFolder(nxt.run_dir).has_model and nxt.result.metrics["accuracy"] is not None
    assert nxt.started >= doomed.ended - 1e-3
    if not torch_before:
        assert "torch" not in sys.modules  # the trainer's process imported it, not this one


def test_a_warm_worker_takes_the_next_run_logs_into_it_and_ends_with_the_server(tmp_path, runners):
    executor = ProcessExecutor(target=f"{HERE}:quick_train")
    runner = runners(1, executor=executor)
    first = runner.wait(runner.submit({}, tmp_path / "first", owner="me").id, 60)
    assert first.state == "finished"
    waiting = wait_for(lambda: executor._idle, 10, "the warm worker")   # it served the first run and waits
    assert RunFolder(first.run_dir).status()["worker_pid"] == waiting.pid
    second = runner.submit({}, tmp_path / "second", owner="me")
    assert runner.wait(second.id, 60).state == "finished", second.message
    assert RunFolder(second.run_dir).status()["worker_pid"] == waiting.pid   # tests/integration/test_warm_worker.py: the rest
    log = (second.run_dir / "worker.log").read_text()
    assert f"trained in process {waiting.pid}" in log and "served 2 run(s)" in log
    assert "served 2 run(s)" not in (first.run_dir / "worker.log").read_text()   # each run's own log
    assert executor._idle is waiting and waiting.alive() and executor.started_workers == 1
    runner.shutdown(timeout=10)
    wait_for(lambda: not waiting.alive(), 10, "the warm worker to end with the server")


# -- Stop -----------------------------------------------------------------------------------------
def test_stop_reaches_the_worker_before_its_next_step(tmp_path, runners):
    runner = runners(1, executor=ProcessExecutor(target=f"{HERE}:patient_train"))
    job = runner.submit({}, tmp_path / "patient", owner="me")
    wait_for(lambda: any(e["kind"] == "step" for e in job.events), 60, "a step")
    pid = RunFolder(job.run_dir).status()["worker_pid"]
    t0 = time.time()
    assert runner.stop(job.id, owner="me")
    assert runner.wait(job.id, 20).state == "stopped"
    assert time.time() - t0 < 5 and job.message.startswith("Stopped by the user")
    assert job.events[-1]["kind"] == "stopped"
    assert runner.executor._idle.pid == pid   # it stopped by itself: the warm worker waits for the next run
    assert not (job.run_dir / ".stop-requested").exists()


def test_a_worker_that_ignores_stop_is_terminated_then_killed(tmp_path, runners):
    runner = runners(1, executor=ProcessExecutor(target=f"{HERE}:stubborn_train", stop_grace_s=0.5,
                                                 kill_after_s=0.5))
    job = runner.submit({}, tmp_path / "stubborn", owner="me")
    wait_for(lambda: any(e["kind"] == "step" for e in job.events), 60, "a step")
    pid = RunFolder(job.run_dir).status()["worker_pid"]
    runner.stop(job.id)
    assert runner.wait(job.id, 20).state == "stopped"
    assert "did not stop by itself" in job.message and not alive(pid)
    assert RunFolder(job.run_dir).status()["state"] == "stopped"


def test_wall_clock_cap_ends_a_run(tmp_path, runners):
    runner = runners(1, executor=ProcessExecutor(target=f"{HERE}:stubborn_train", max_minutes=0.03,
                                                 stop_grace_s=0.5, kill_after_s=0.5))
    job = runner.submit({}, tmp_path / "endless", owner="me")
    assert runner.wait(job.id, 30).state == "failed"
    assert "time limit of 0.03 minutes" in job.message and "TL_JOB_MAX_MINUTES" in job.message


# -- the memory cap, through the app; the server keeps answering ----------------------------------
@pytest.fixture(scope="module")
def capped_server(tmp_path_factory):
    from tl_ui.app.server import start_in_thread
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    settings = Settings(runs_dir=tmp_path_factory.mktemp("capped-runs"), max_jobs=1, job_memory_gb=0.1)
    server = start_in_thread(build_app(settings), settings=settings)
    yield server
    server.stop()


def test_a_run_over_its_memory_cap_fails_cleanly(capped_server):
    from gradio_client import Client

    url = capped_server.url
    health = httpx.get(url + "healthz", timeout=10).json()
    assert health["executor"] == "process"
    client = Client(url, verbose=False, analytics_enabled=False)
    job = client.submit("efficientnet_lite0", None, "partial", 1, TINY_IMAGE_OPTIONS, api_name="/train")
    answered = 0
    while not job.done():
        assert httpx.get(url + "healthz", timeout=10).status_code == 200   # the server stays up
        answered += 1
        time.sleep(0.5)
    status, metrics, run_id = job.result(timeout=120)
    assert metrics["state"] == "failed", metrics
    assert "ran out of memory" in metrics["message"] and "TL_JOB_MEMORY_GB" in metrics["message"]
    assert answered >= 1 and httpx.get(url, timeout=10).status_code == 200
    run_dir = next(Path(capped_server.lab.settings.runs_dir).glob(f"*/runs/{run_id}"))
    assert RunFolder(run_dir).status()["state"] == "failed" and not (run_dir / "model").exists()


# -- one server per runs folder -----------------------------------------------------------------
def test_a_second_server_on_the_same_runs_folder_refuses_to_start(capped_server):
    runs_dir = capped_server.lab.settings.runs_dir
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, str(REPO / "app.py"), "--runs-dir", str(runs_dir), "--port", str(port)]
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TL_OFFLINE": "1"})
    assert second.returncode == 2, second.stderr[-2000:]
    assert f"Another Transfer Lab server (process {os.getpid()}) is using the runs folder" in second.stderr
    assert "TL_RUNS_DIR" in second.stderr
    assert httpx.get(capped_server.url + "healthz", timeout=10).json()["ok"]   # the first one goes on
