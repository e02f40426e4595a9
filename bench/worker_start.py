"""Worker start: a fresh interpreter against a fork of the fork server (tl_ui/jobs/forkserver.py).

Times the inference worker from `WorkerProcess.start` to its "ready" reply (torch, timm, transformers and
the engine imported), and the worker's own CPU time by then (/proc), in turns (fresh, fork, fork, fresh,
...) so that a busy neighbour slows both sides alike. The fork server is started and waited for once,
before the first round (its own import is the fresh interpreter's cost, paid once per web process).

    .venv/bin/python -m bench.worker_start [--rounds 8]      (from the repository root)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_start(fork: bool, runs_root: str) -> dict:
    from tl_ui.jobs.supervisor import WorkerProcess

    os.environ["TL_FORKSERVER"] = "1" if fork else "0"
    began = time.perf_counter()
    worker = WorkerProcess.start("inference", "tl_ui.jobs.inference.worker", replies=True)
    worker.send({"parent_pid": os.getpid(), "memory_gb": 0, "runs_root": runs_root})
    reply = worker.read_reply(120) or {}
    seconds = time.perf_counter() - began
    cpu = _cpu_seconds(worker.pid)
    worker.stop(grace_s=5, kill_after_s=2)
    assert reply.get("ready"), f"the worker did not say it was ready: {reply}"
    return {"seconds": seconds, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    from tl_ui.jobs import forkserver

    results: dict = {"fresh": [], "fork": []}
    with tempfile.TemporaryDirectory(prefix="tl-bench-worker-start-") as runs_root:
        one_start(True, runs_root)                      # starts the fork server and waits for its imports
        assert forkserver._shared is not None and forkserver._shared.wait_ready(), "the fork server did not start"
        for index in range(args.rounds):
            for kind in (("fresh", "fork") if index % 2 == 0 else ("fork", "fresh")):
                results[kind].append(one_start(kind == "fork", runs_root))
    summary = {}
    for kind, rows in results.items():
        for key in ("seconds", "cpu_s"):
            values = [row[key] for row in rows]
            summary[f"{kind}_{key}"] = {"median": round(statistics.median(values), 3),
                                        "min": round(min(values), 3), "max": round(max(values), 3)}
    summary["ratio_seconds"] = round(summary["fresh_seconds"]["median"] / summary["fork_seconds"]["median"], 1)
    summary["rounds"] = args.rounds
    summary["cpus"] = os.cpu_count()
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
