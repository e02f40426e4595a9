"""The Runner with small real train functions (no torch): order, limits, stop, failures."""
import threading
import time
from types import SimpleNamespace

import pytest

from tl_ui.jobs.runner import QueueFull, Runner


def fake_train(steps=5, step_s=0.02, log=None, fail=False, crash=False):
    """A train_run look-alike: emits started/step/finished events and honours should_stop."""

    def train(config, run_dir, on_event, should_stop, dataset=None):
        if log is not None:
            log.append(("start", run_dir.name, time.time()))
        on_event({"kind": "started", "run_id": run_dir.name, "epochs": 1, "total_steps": steps})
        if crash:
            raise RuntimeError("boom")
        if fail:
            on_event({"kind": "failed", "run_id": run_dir.name, "message": "Your data has one class."})
            return SimpleNamespace(status="failed", message="Your data has one class.")
        for step in range(1, steps + 1):
            if should_stop():
                on_event({"kind": "stopped", "run_id": run_dir.name, "epoch": 1, "step": step - 1,
                          "message": "Stopped by you."})
                return SimpleNamespace(status="stopped", message="Stopped by you.")
            time.sleep(step_s)
            on_event({"kind": "step", "epoch": 1, "step": step, "total_steps": steps, "train_loss": 1.0 / step})
        on_event({"kind": "finished", "run_id": run_dir.name, "accuracy": 1.0})
        if log is not None:
            log.append(("end", run_dir.name, time.time()))
        return SimpleNamespace(status="finished", message="", metrics={"accuracy": 1.0})

    return train


@pytest.fixture
def runner_factory():
    made = []

    def make(*args, **kwargs):
        r = Runner(*args, **kwargs)
        made.append(r)
        return r

    yield make
    for r in made:
        r.shutdown(timeout=5)


def test_jobs_run_one_at_a_time_in_submission_order(tmp_path, runner_factory):
    log = []
    runner = runner_factory(1, train_fn=fake_train(steps=3, log=log))
    jobs = [runner.submit({}, tmp_path / f"run{i}", owner=f"o{i}") for i in range(4)]
    waiting = [runner.position(j) for j in jobs[1:]]
    assert waiting == sorted(waiting) and waiting[-1] >= 2  # later submissions wait further back
    for job in jobs:
        assert runner.wait(job.id, timeout=20).state == "finished"
    starts = [name for kind, name, _ in log if kind == "start"]
    assert starts == [f"run{i}" for i in range(4)]
    for earlier, later in zip(jobs, jobs[1:]):  # never two at once
        assert later.started >= earlier.ended
    assert [j.seq for j in jobs] == sorted(j.seq for j in jobs)


def test_queue_position_moves_on(tmp_path, runner_factory):
    gate = threading.Event()

    def blocking(config, run_dir, on_event, should_stop, dataset=None):
        while not gate.is_set() and not should_stop():
            time.sleep(0.01)
        return SimpleNamespace(status="finished", message="")

    runner = runner_factory(1, train_fn=blocking)
    first = runner.submit({}, tmp_path / "a", owner="x")
    second = runner.submit({}, tmp_path / "b", owner="y")
    third = runner.submit({}, tmp_path / "c", owner="z")
    deadline = time.time() + 5
    while first.state != "running" and time.time() < deadline:
        time.sleep(0.01)
    assert (runner.position(first), runner.position(second), runner.position(third)) == (0, 1, 2)
    assert runner.busy == 1 and runner.waiting == 2
    gate.set()
    for job in (first, second, third):
        assert runner.wait(job.id, timeout=10).state == "finished"
    assert runner.position(third) == 0


def test_two_workers_run_in_parallel(tmp_path, runner_factory):
    log = []
    runner = runner_factory(2, train_fn=fake_train(steps=10, step_s=0.03, log=log))
    a = runner.submit({}, tmp_path / "a", owner="x")
    b = runner.submit({}, tmp_path / "b", owner="y")
    runner.wait(a.id, 10), runner.wait(b.id, 10)
    assert b.started < a.ended  # overlapped


def test_stop_a_running_job_within_one_step(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(steps=1000, step_s=0.01))
    job = runner.submit({}, tmp_path / "long", owner="me")
    while not any(e["kind"] == "step" for e in job.events):
        time.sleep(0.01)
    assert runner.stop(job.id, owner="someone-else") is False  # not theirs
    t0 = time.time()
    assert runner.stop(job.id, owner="me") is True
    assert runner.wait(job.id, timeout=5).state == "stopped"
    assert time.time() - t0 < 1.0
    steps = [e for e in job.events if e["kind"] == "step"]
    assert len(steps) < 1000
    # the runner is free again: the next job runs
    runner.executor.train_fn = fake_train(steps=2)
    nxt = runner.submit({}, tmp_path / "next", owner="me")
    assert runner.wait(nxt.id, timeout=5).state == "finished"


def test_stop_a_waiting_job_removes_it_from_the_queue(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(steps=50, step_s=0.01))
    first = runner.submit({}, tmp_path / "a", owner="x")
    second = runner.submit({}, tmp_path / "b", owner="y")
    assert runner.stop(second.id, owner="y")
    assert second.state == "stopped" and runner.position(second) == 0
    assert second.events[-1]["kind"] == "stopped"
    assert runner.wait(first.id, timeout=10).state == "finished"
    assert second.started is None  # never ran


def test_failures_and_crashes_end_the_job_cleanly(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(fail=True))
    job = runner.submit({}, tmp_path / "f", owner="x")
    assert runner.wait(job.id, 5).state == "failed"
    assert job.message == "Your data has one class."

    runner.executor.train_fn = fake_train(crash=True)
    job = runner.submit({}, tmp_path / "c", owner="x")
    assert runner.wait(job.id, 5).state == "failed"
    assert "internal error" in job.message and "boom" not in job.message
    assert job.events[-1]["kind"] == "failed"
    assert (tmp_path / "c" / "status.json").exists()
    # the worker survived the crash
    runner.executor.train_fn = fake_train(steps=1)
    ok = runner.submit({}, tmp_path / "ok", owner="x")
    assert runner.wait(ok.id, 5).state == "finished"


def test_per_owner_limit(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(steps=100, step_s=0.01), max_per_owner=2)
    runner.submit({}, tmp_path / "a", owner="greedy")
    runner.submit({}, tmp_path / "b", owner="greedy")
    with pytest.raises(QueueFull, match="already have 2"):
        runner.submit({}, tmp_path / "c", owner="greedy")
    other = runner.submit({}, tmp_path / "d", owner="polite")  # others are not blocked
    assert runner.position(other) >= 1


def test_event_readers_follow_with_cursors(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(steps=20, step_s=0.01))
    job = runner.submit({}, tmp_path / "r", owner="x")
    seen, cursor = [], 0
    while True:
        events, cursor = job.wait_events(cursor, timeout=0.5)
        seen += events
        if job.done and not job.events_since(cursor)[0]:
            break
    assert [e["kind"] for e in seen] == [e["kind"] for e in job.events]
    assert seen[0]["kind"] == "started" and seen[-1]["kind"] == "finished"
    assert runner.get(job.id, owner="x") is job and runner.get(job.id, owner="y") is None
    assert runner.jobs("x") == [job] and runner.active_job("x") is None


def test_injected_train_function_runs_inline(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(steps=1))
    assert runner.executor_name == "inline"
    job = runner.submit({}, tmp_path / "i", owner="x")
    assert runner.wait(job.id, 5).state == "finished"


def test_global_cap_names_its_setting(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(steps=200, step_s=0.01), max_queued=3, max_per_owner=5)
    for i in range(3):
        runner.submit({}, tmp_path / f"g{i}", owner=f"o{i}")
    with pytest.raises(QueueFull, match=r"queue is full: 3 runs .*limit is 3.*TL_MAX_QUEUED\)"):
        runner.submit({}, tmp_path / "g3", owner="newcomer")
    runner.stop(runner.jobs()[-1].id)  # a stopped job frees its place
    assert runner.submit({}, tmp_path / "g4", owner="newcomer").state == "queued"


def test_per_owner_cap_names_its_setting(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(steps=200, step_s=0.01), max_per_owner=1)
    runner.submit({}, tmp_path / "a", owner="me")
    with pytest.raises(QueueFull, match="already have 1 .*TL_MAX_QUEUED_PER_USER"):
        runner.submit({}, tmp_path / "b", owner="me")


def test_per_address_cap_for_callers_without_login(tmp_path, runner_factory):
    runner = runner_factory(1, train_fn=fake_train(steps=200, step_s=0.01), max_per_owner=5, max_per_address=2)
    runner.submit({}, tmp_path / "a", owner="session:1", address="10.0.0.7")
    runner.submit({}, tmp_path / "b", owner="session:2", address="10.0.0.7")  # a new session, same address
    with pytest.raises(QueueFull, match=r"2 training runs from your network address.*limit is 2.*TL_MAX_QUEUED_PER_ADDRESS"):
        runner.submit({}, tmp_path / "c", owner="session:3", address="10.0.0.7")
    runner.submit({}, tmp_path / "d", owner="session:4", address="10.0.0.8")   # another address
    runner.submit({}, tmp_path / "e", owner="user:alice", address=None)          # a logged-in user


def test_lab_passes_the_address_of_anonymous_callers_only(tmp_path):
    from tl_ui.data import sample_dataset_path
    from tl_ui.service.errors import UserError
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings

    lab = Lab(Settings(runs_dir=tmp_path / "runs", max_queued_per_address=1, max_queued_per_user=5),
              train_fn=fake_train(steps=500, step_s=0.01))
    try:
        outcome = lab.load_data(Owner("session", "sid-a"), sample_dataset_path("text"), "reviews.csv", copy=False)
        start = lambda owner, address: lab.start_run(owner, outcome.dataset, "", "minilm_l6", {}, address=address)
        start(Owner("session", "sid-a"), "192.0.2.9")
        with pytest.raises(UserError, match="TL_MAX_QUEUED_PER_ADDRESS"):
            start(Owner("session", "sid-b"), "192.0.2.9")
        assert start(Owner("user", "alice"), "192.0.2.9").address is None  # logins are counted per user
        assert len(list((tmp_path / "runs").glob("*/runs/*"))) == 2  # the refused run left no folder
    finally:
        lab.close()


def test_event_history_keeps_epochs_and_a_bounded_tail_of_steps(tmp_path, runner_factory):
    def chatty(config, run_dir, on_event, should_stop, dataset=None):
        on_event({"kind": "started", "run_id": run_dir.name})
        for step in range(1, 1001):
            on_event({"kind": "step", "epoch": 1 + step // 100, "step": step, "train_loss": 1.0})
            if step % 100 == 0:
                on_event({"kind": "epoch", "epoch": step // 100, "step": step})
        on_event({"kind": "finished", "run_id": run_dir.name})
        return SimpleNamespace(status="finished", message="")

    runner = runner_factory(1, train_fn=chatty, max_step_events=50)
    job = runner.submit({}, tmp_path / "chatty", owner="x")
    runner.wait(job.id, 10)
    kinds = [e["kind"] for e in job.events]
    assert kinds.count("epoch") == 10 and kinds[0] == "started" and kinds[-1] == "finished"
    steps = [e["step"] for e in job.events if e["kind"] == "step"]
    assert 50 <= len(steps) <= 150 and steps[-1] == 1000 and steps == sorted(steps)
    # cursors count every event ever added: a reader that is up to date gets nothing twice
    events, cursor = job.events_since(0)
    assert cursor == 1 + 1000 + 10 + 1
    assert job.events_since(cursor) == ([], cursor)
    assert job.events_since(cursor - 1)[0] == [events[-1]]
