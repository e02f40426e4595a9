"""One training run the way the app runs it, for timings a user would see: a fresh worker process
(`tl_ui.executors.process.WORKER_COMMAND`, the payload on stdin, as the app's ProcessExecutor sends
it), timed from spawning the process to its exit: interpreter start, importing torch, model loading,
training, calibration, the test examples, the export. Where the engine has no worker processes, the
run is `train_run` in this process instead (and says so)."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from bench.harness import ROOT, Clock, child_env


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def run(config, dataset, run_dir: Path) -> dict:
    """{"status", "message", "metrics", "wall_s", "cpu_s", "engine_s", "epochs_run", "how"}."""
    try:
        from tl_ui.executors.process import WORKER_COMMAND
        from tl_ui.executors.worker import make_payload
    except ImportError:
        return _in_process(config, dataset, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    job = SimpleNamespace(id=run_dir.name, run_dir=run_dir, config=config, dataset=dataset)
    payload = json.dumps(make_payload(job, executor="process", sys_path=[str(ROOT)],
                                      parent_pid=os.getpid())).encode("utf-8")  # it ends if the bench does
    cpu0 = _children_cpu()
    with Clock() as c:
        proc = subprocess.run(WORKER_COMMAND, input=payload, cwd=ROOT, env=child_env(MALLOC_ARENA_MAX="2"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=3600)
    status = json.loads((run_dir / "status.json").read_text()) if (run_dir / "status.json").exists() else {}
    metrics_path = run_dir / "metrics.json"
    events = _events(run_dir)
    kinds = [e.get("kind") for e in events]
    return {"status": status.get("state", f"exit code {proc.returncode}"),
            "message": status.get("message") or proc.stdout.decode(errors="replace")[-800:],
            "metrics": json.loads(metrics_path.read_text()) if metrics_path.exists() else None,
            "wall_s": c.wall, "cpu_s": _children_cpu() - cpu0, "epochs_run": kinds.count("epoch"),
            "engine_s": (events[-1]["time"] - events[0]["time"]) if len(events) > 1 else None,
            "how": "worker process, as the app runs it"}


def _in_process(config, dataset, run_dir: Path) -> dict:
    from bench.harness import Events
    from tl_ui.engine import train_run

    ev = Events()
    t0 = time.time()
    with Clock() as c:
        res = train_run(config, run_dir, on_event=ev, dataset=dataset)
    started = ev.of("started")
    return {"status": res.status, "message": res.message, "metrics": res.metrics, "wall_s": c.wall, "cpu_s": c.cpu,
            "epochs_run": len(ev.of("epoch")), "engine_s": (time.time() - started[0].time) if started else time.time() - t0,
            "how": "train_run in the bench's process (no worker processes in this engine)"}


if __name__ == "__main__":  # a smoke test: python -m bench.sections.app_run
    import tempfile

    from bench.data import sample_dataset
    from tl_ui.core.config import RunConfig

    with tempfile.TemporaryDirectory() as d:
        r = run(RunConfig(model_id="minilm_l6", strategy="linear_probe", epochs=1, max_examples=60),
                sample_dataset("text"), Path(d) / "run")
        print({k: v for k, v in r.items() if k != "metrics"}, (r["metrics"] or {}).get("accuracy"))
    sys.exit(0)
