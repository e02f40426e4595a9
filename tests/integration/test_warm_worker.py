"""Warm workers (tl_ui/jobs/executors/process.py, worker.serve; tl_ui/engine/models/model_cache.py): one worker
process serves runs one after another and keeps pretrained models, with every guarantee of a
one-run worker. Real worker processes; real tiny engine runs where the model matters."""
import json
import os
import signal
import sys
from types import SimpleNamespace

import pytest

from tests.integration.test_executors import HERE, _record, alive, tiny_image_run, wait_for
from tl_ui.jobs.executors import UNEXPECTED_END, ProcessExecutor
from tl_ui.core.runfolder import RunFolder
from tl_ui.jobs.runner import Runner

SAME = ("accuracy", "accuracy_ci", "macro_f1", "confusion_matrix", "log_loss", "calibration", "best_epoch",
        "epochs_run", "cross_validation")


# -- stand-ins that run inside the worker (no torch) ------------------------------------------------
def hungry_train(config, run_dir, on_event, should_stop, dataset=None):
    """Asks for far more memory than the cap allows."""
    _record(run_dir, kind="started", run_id=run_dir.name if hasattr(run_dir, "name") else str(run_dir))
    blocks = [bytearray(256 * 1024 ** 2) for _ in range(16)]   # 4 GB against a 0.3 GB cap: MemoryError
    return SimpleNamespace(status="finished", message=str(len(blocks)))


def crashing_train(config, run_dir, on_event, should_stop, dataset=None):
    """A native crash: the process dies without recording anything."""
    _record(run_dir, kind="started", run_id=str(run_dir))
    os.kill(os.getpid(), signal.SIGSEGV)


def _runner(**kwargs) -> Runner:
    return Runner(1, executor=ProcessExecutor(**kwargs))


def _served(job) -> tuple[int, int]:
    status = RunFolder(job.run_dir).status()
    return status["worker_pid"], status.get("worker_runs")


@pytest.fixture
def runners():
    made = []

    def make(**kwargs):
        made.append(_runner(**kwargs))
        return made[-1]

    yield make
    for runner in made:
        runner.shutdown(timeout=10)


# -- one warm worker against fresh ones: same numbers, the model reused, no weights carried over ----
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A partial fine-tune (it trains backbone layers), then a linear probe without an embedding
    cache (its embeddings come from the model itself), once in one warm worker and once each in a
    fresh worker."""
    root = tmp_path_factory.mktemp("warm")
    finetune, dataset = tiny_image_run(strategy="partial", epochs=1)
    probe, _ = tiny_image_run(strategy="linear_probe", epochs=3)
    out = {}
    for mode, warm in (("warm", True), ("fresh", False)):
        runner = _runner(warm=warm)
        try:
            jobs = [runner.submit(config, root / f"{mode}-{name}", owner="me", dataset=dataset)
                    for name, config in (("finetune", finetune), ("probe", probe))]
            out[mode] = [runner.wait(job.id, 600) for job in jobs]
            out[mode + "_started"] = runner.executor.started_workers
        finally:
            runner.shutdown(timeout=10)
    return out


@pytest.mark.slow   # the fixture trains four tiny runs in three worker processes
def test_two_runs_in_one_warm_worker_match_two_fresh_workers(served):
    warm, fresh = served["warm"], served["fresh"]
    for job in (*warm, *fresh):
        assert job.state == "finished", job.message
    assert _served(warm[0])[0] == _served(warm[1])[0] and _served(warm[1])[1] == 2   # one process, two runs
    assert _served(fresh[0])[0] != _served(fresh[1])[0]
    for w, f in zip(warm, fresh):
        mw, mf = RunFolder(w.run_dir).metrics(), RunFolder(f.run_dir).metrics()
        assert {k: mw.get(k) for k in SAME} == {k: mf.get(k) for k in SAME}
    assert (served["warm_started"], served["fresh_started"]) == (1, 2)


@pytest.mark.slow   # the fixture trains four tiny runs in three worker processes
def test_the_second_run_copies_the_kept_model_instead_of_building_it(served):
    first, second = (RunFolder(job.run_dir).status()["model_cache"] for job in served["warm"])
    assert (first["built"], first["reused"]) == (1, 0)
    assert (second["built"], second["reused"]) == (1, 1)
    assert first["kept"] == ["efficientnet_lite0"] and 0 < second["kept_mb"] < 100


@pytest.mark.slow   # the fixture trains four tiny runs in three worker processes
def test_the_probe_never_sees_the_fine_tuned_weights(served):
    """The fine-tune changed backbone weights in the same process; the probe after it embeds with
    the untouched pretrained ones: its predictions equal those of a probe in a fresh process."""
    warm, fresh = served["warm"][1], served["fresh"][1]
    assert (warm.run_dir / "predictions.csv").read_text() == (fresh.run_dir / "predictions.csv").read_text()
    tuned = RunFolder(served["warm"][0].run_dir).metrics()
    assert tuned["trainable_params"] > RunFolder(warm.run_dir).metrics()["trainable_params"]


def test_a_kept_model_is_a_copy_that_shares_nothing():
    import torch

    from tl_ui.core.catalog import get_model
    from tl_ui.engine.models.model_cache import ModelCache
    from tl_ui.engine.models.build import _pretrained_image_model

    cache = ModelCache()
    cache.enabled = True
    entry = get_model("efficientnet_lite0")
    first = cache.get("m", lambda: _pretrained_image_model(entry))
    reference = {k: v.clone() for k, v in first.state_dict().items()}
    with torch.no_grad():
        for p in first.parameters():
            p.add_(1.0)   # as a run's training would
    second = cache.get("m", lambda: pytest.fail("built again"))
    assert (cache.built, cache.reused) == (1, 1)
    for key, value in second.state_dict().items():
        assert torch.equal(value, reference[key]), key
    kept = {p.data_ptr() for p in cache._kept["m"][0].parameters()}
    assert not kept & {p.data_ptr() for p in second.parameters()}
    state = torch.random.get_rng_state()
    cache.get("n", lambda: torch.nn.Linear(3, 3))   # building draws random numbers...
    assert torch.equal(torch.random.get_rng_state(), state)   # ...but leaves the run's random state as it was


# -- a run that breaks its worker takes only itself --------------------------------------------------
@pytest.mark.parametrize("doom", ["crashing_train", "hungry_train"])
def test_a_crash_or_memory_cap_in_a_warm_worker_fails_alone_and_the_next_run_gets_a_fresh_worker(
        tmp_path, runners, doom):
    runner = runners(target=f"{HERE}:quick_train", memory_gb=0.3)
    first = runner.wait(runner.submit({}, tmp_path / "first", owner="me").id, 60)
    assert first.state == "finished", first.message
    warm_pid = _served(first)[0]
    runner.executor.target = f"{__name__}:{doom}"   # the same warm worker takes this run
    doomed = runner.wait(runner.submit({}, tmp_path / "doomed", owner="me").id, 60)
    assert doomed.state == "failed" and _served(doomed)[0] == warm_pid
    if doom == "hungry_train":
        assert "ran out of memory" in doomed.message and "TL_JOB_MEMORY_GB" in doomed.message
    else:
        assert doomed.message == UNEXPECTED_END
    wait_for(lambda: not alive(warm_pid), 10, "the broken worker to end")
    runner.executor.target = f"{HERE}:quick_train"
    nxt = runner.wait(runner.submit({}, tmp_path / "next", owner="me").id, 60)
    assert nxt.state == "finished", nxt.message
    pid, runs = _served(nxt)
    assert pid != warm_pid and runs == 1
    assert f"trained in process {pid}" in (nxt.run_dir / "worker.log").read_text()
    assert f"trained in process {pid}" not in (first.run_dir / "worker.log").read_text()


# -- Stop ----------------------------------------------------------------------------------------------
def test_stop_in_a_warm_worker_keeps_it_warm_and_a_forced_stop_ends_it(tmp_path, runners):
    runner = runners(target=f"{HERE}:patient_train", stop_grace_s=0.5, kill_after_s=0.5)
    job = runner.submit({}, tmp_path / "patient", owner="me")
    wait_for(lambda: any(e["kind"] == "step" for e in job.events), 60, "a step")
    pid = _served(job)[0]
    runner.stop(job.id)
    assert runner.wait(job.id, 20).state == "stopped" and job.message.startswith("Stopped by the user")
    assert alive(pid) and runner.executor._idle.pid == pid   # stopped by itself: still fit to serve

    runner.executor.target = f"{HERE}:stubborn_train"
    stubborn = runner.submit({}, tmp_path / "stubborn", owner="me")
    wait_for(lambda: any(e["kind"] == "step" for e in stubborn.events), 60, "a step")
    assert _served(stubborn) == (pid, 2)
    runner.stop(stubborn.id)
    assert runner.wait(stubborn.id, 20).state == "stopped" and "did not stop by itself" in stubborn.message
    assert not alive(pid)
    fresh = wait_for(lambda: runner.executor._idle, 10, "a fresh waiting worker")
    assert fresh.pid != pid and fresh.alive()
    runner.shutdown(timeout=10)
    wait_for(lambda: not fresh.alive(), 10, "the waiting worker to end with the server")


def test_the_parent_death_watch_ends_a_waiting_worker(tmp_path):
    """A server that dies (SIGKILL) leaves no warm worker behind."""
    import subprocess
    import textwrap

    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = {[p for p in sys.path if p]!r}
        from tl_ui.jobs.executors import ProcessExecutor
        ex = ProcessExecutor(target="{HERE}:quick_train")
        ex.prestart()
        print(ex._idle.pid, flush=True)
        time.sleep(600)
    """)
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(server.stdout.readline())
        assert alive(pid)
        server.kill()
        server.wait(10)
        wait_for(lambda: not alive(pid) or _zombie(pid), 15, "the waiting worker to end")
    finally:
        server.kill()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_switched_off_each_run_has_its_own_process(tmp_path, runners):
    runner = runners(target=f"{HERE}:quick_train", warm=False)
    pids = []
    for name in ("a", "b"):
        job = runner.wait(runner.submit({}, tmp_path / name, owner="me").id, 60)
        assert job.state == "finished", job.message
        pids.append(RunFolder(job.run_dir).status()["worker_pid"])
    assert pids[0] != pids[1] and runner.executor._idle is None
    assert json.loads((tmp_path / "b" / "status.json").read_text()).get("worker_runs") is None
