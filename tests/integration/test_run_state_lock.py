"""Consistent run state (issue 36): every status change goes through `RunFolder.set_status`, which
holds the run folder's flock while it reads, changes and writes status.json. Two processes changing
one run's state as fast as they can never lose a change."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.helpers.common import REPO
from tl_ui.contracts import RunState
from tl_ui.core.runfolder import STATUS_LOCK, RunFolder

HAMMER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from tl_ui.core.runfolder import RunFolder
    run, name, n = RunFolder(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    states = ["queued", "running", "finished", "stopped", "failed"]
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()                       # both start together
    for i in range(n):
        run.set_status(states[i % len(states)], f"{name} {i}", **{name: i})
""")


def test_two_processes_hammering_transitions_never_lose_one(tmp_path):
    run = RunFolder(tmp_path / "run").create()
    run.set_status(RunState.QUEUED)
    n = 250
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, str(REPO), str(run.path), name, str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for name in ("a", "b")]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(120) == 0
    status = json.loads((run.path / "status.json").read_text())
    # 1 + 2 x 250 changes, each one counted on top of the one before it: none was overwritten unseen
    assert status["transitions"] == 1 + 2 * n
    assert status["a"] == n - 1 and status["b"] == n - 1   # each writer's last change kept the other's fields
    assert (run.path / STATUS_LOCK).exists()


def test_a_conditional_transition_is_checked_under_the_same_lock(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.set_status(RunState.RUNNING)
    assert run.set_status(RunState.FINISHED, "", only_from={RunState.RUNNING})["state"] == "finished"
    # a run that has ended is not marked interrupted (the server's restart) nor started again by a late writer
    assert run.mark_interrupted() is False
    assert run.set_status(RunState.RUNNING, "", only_from={RunState.QUEUED}) is None
    assert run.state() == RunState.FINISHED and run.status()["transitions"] == 2
