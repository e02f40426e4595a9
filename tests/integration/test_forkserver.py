"""Workers forked from the fork server (tl_ui/jobs/forkserver.py) look like the fresh interpreters they
replace: the requested environment, working folder, session, stdin and output; Popen's exit codes; and
another fork server when the environment changes (libraries read some variables once, at import)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tl_ui.jobs import forkserver
from tl_ui.jobs.supervisor import WorkerProcess

MODULE = "tests.helpers.echo_worker"


@pytest.fixture
def started(tmp_path, monkeypatch):
    """Start an echo worker; returns (what it printed, the WorkerProcess, its exit code)."""
    monkeypatch.delenv(forkserver.ENABLE_ENV, raising=False)
    if not forkserver.wanted():
        pytest.skip("no fork server on this machine (a GPU, or no fork)")
    workers = []

    def start(asked: dict, env=None, name="out.txt"):
        out = tmp_path / name
        with open(out, "wb") as handle:
            worker = WorkerProcess.start("test", MODULE, env=env, stdout=handle)
        workers.append(worker)
        worker.send_all((json.dumps(asked) + "\n").encode("utf-8"))
        code = worker.reap()
        lines = [line for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
        return (json.loads(lines[0]) if lines else None), worker, code, out.read_text(encoding="utf-8")

    yield start
    for worker in workers:
        worker.stop(grace_s=1, kill_after_s=1)


def test_a_forked_worker_sees_what_a_fresh_interpreter_would(started, tmp_path, monkeypatch):
    seen, worker, code, _ = started({"exit": 0}, env={"TL_ECHO_OWN": "mine"})
    assert isinstance(worker.proc, forkserver.ForkedProcess)
    assert code == 0
    assert seen["torch_loaded"]                                       # the fork server's imports came with it
    assert seen["ppid"] == forkserver._shared.proc.pid                 # a child of the fork server
    assert seen["sid"] == seen["pid"]                                  # in a session of its own
    assert seen["argv"] == ["-c"]
    assert seen["cwd"] == os.getcwd()
    env = seen["env"]
    assert env["TL_ECHO_OWN"] == "mine" and env["PYTHONUNBUFFERED"] == "1"
    by_imports = forkserver._shared._set_by_imports()   # e.g. OpenCV's LD_LIBRARY_PATH, as after its import
    expected = {k: v for k, v in os.environ.items() if k not in forkserver.IGNORED_ENV and k not in by_imports}
    assert {k: env.get(k) for k in expected} == expected               # the web process's environment
    assert all(env.get(k) in (os.environ.get(k), v) for k, v in by_imports.items())
    assert env[forkserver.FORKSERVER_PID_ENV] == str(seen["ppid"])


@pytest.mark.parametrize("asked, code", [({"exit": 3}, 3), ({"raise": True}, 1), ({"exit": 0}, 0)])
def test_exit_codes_are_popens(started, asked, code):
    _, worker, got, output = started(asked)
    assert isinstance(worker.proc, forkserver.ForkedProcess)
    assert got == code
    if asked.get("raise"):
        assert "RuntimeError: asked to fail" in output               # the traceback in its output, as `python -c`


def test_a_killed_worker_reads_minus_nine_and_terminate_works(tmp_path, monkeypatch):
    monkeypatch.delenv(forkserver.ENABLE_ENV, raising=False)
    if not forkserver.wanted():
        pytest.skip("no fork server on this machine")
    for stop, code in (("kill", -9), ("terminate", -15)):
        worker = WorkerProcess.start("test", MODULE, stdout=subprocess.DEVNULL)
        worker.send({"wait": True})
        assert not worker.wait(0.5)
        getattr(worker, stop)()
        assert worker.reap() == code


def test_another_environment_gets_another_fork_server_and_the_old_one_ends_after_its_workers(started, monkeypatch):
    # fork servers of this test's own: this process's shared one may also serve other tests' live workers
    monkeypatch.setattr(forkserver, "_shared", None)
    started({"exit": 0}, name="first.txt")
    old = forkserver._shared
    waiting = WorkerProcess.start("test", MODULE, stdout=subprocess.DEVNULL)   # a worker of the old one, still running
    waiting.send({"wait": True})
    assert isinstance(waiting.proc, forkserver.ForkedProcess)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")                         # read once, at import, by torch
    seen, worker, code, _ = started({"exit": 0}, name="second.txt")
    assert isinstance(worker.proc, forkserver.ForkedProcess) and code == 0
    assert forkserver._shared is not old and seen["ppid"] == forkserver._shared.proc.pid
    assert seen["env"]["OMP_NUM_THREADS"] == "7" and seen["torch_loaded"]
    assert old.proc.poll() is None                                     # it still serves its running worker
    assert waiting.stop(grace_s=10, kill_after_s=2) == 0               # which ends at its stdin's end, as asked
    old.proc.wait(10)                                                  # and then the old fork server ends
    forkserver._shared.retire()                                        # the new one has no worker left: it ends now
    forkserver._shared.proc.wait(10)


def test_a_retired_fork_server_stays_while_a_fork_is_in_flight(monkeypatch):
    """Another thread's environment retires the fork server while this thread's request is being forked: the
    fork server must not end with its last running worker then, or the fork's answer (and the worker) is lost."""
    monkeypatch.delenv(forkserver.ENABLE_ENV, raising=False)
    if not forkserver.wanted():
        pytest.skip("no fork server on this machine")
    monkeypatch.setattr(forkserver, "_shared", None)   # one of this test's own
    running = WorkerProcess.start("test", MODULE, stdout=subprocess.DEVNULL)
    running.send({"wait": True})
    server = forkserver._shared
    with server._lock:   # what a request holds from its send until its answer
        server.retire()
        assert running.stop(grace_s=10, kill_after_s=2) == 0   # its last worker ends meanwhile
        time.sleep(0.5)
        assert server.usable()
    server._close_if_done()   # what the request does once answered: now it may go
    server.proc.wait(10)
