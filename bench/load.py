"""Load benchmark: many users, one training slot, the page stays quick.

Starts the app in this process (worker-process executor, one job at a time) on 127.0.0.1, lets 8
gradio_client users submit 16 small runs (2 each, tiny options, 1 epoch) and checks that every run
finishes, none is lost, and they ran one at a time in submission (FIFO) order. While training
goes on, a sampler times GET / and GET /healthz; at the end it reports their p50/p95 and this
process's peak RSS (the web server, with the 8 clients' threads; training happens in worker
processes). Prints a table and writes bench/load-results.json. Loopback only; ends by itself
(every wait is bounded by --max-minutes).

    .venv/bin/python bench/load.py [--users 8] [--jobs 16] [--max-minutes 25] [--out bench/load-results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OPTIONS = {"max_examples": 40, "image_size": 64}
MODEL, STRATEGY, EPOCHS = "efficientnet_lite0", "partial", 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


class Sampler(threading.Thread):
    """Times GET / and GET /healthz every `every` s while at least one job is running."""

    def __init__(self, url: str, runner, every: float = 0.25):
        super().__init__(name="load-sampler", daemon=True)
        self.url, self.runner, self.every = url, runner, every
        self.times: dict[str, list[float]] = {"/": [], "/healthz": []}
        self.errors = 0
        self.done = threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as http:
            while not self.done.is_set():
                if self.runner.busy:
                    for path in self.times:
                        t0 = time.perf_counter()
                        try:
                            ok = http.get(self.url.rstrip("/") + path).status_code == 200
                        except httpx.HTTPError:
                            ok = False
                        if ok:
                            self.times[path].append((time.perf_counter() - t0) * 1000)
                        else:
                            self.errors += 1
                self.done.wait(self.every)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--max-minutes", type=float, default=25.0, help="every wait ends by then")
    parser.add_argument("--out", default=str(REPO / "bench" / "load-results.json"))
    args = parser.parse_args(argv)

    from gradio_client import Client

    from tl_ui.app.server import start_in_thread
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    deadline = time.time() + args.max_minutes * 60
    work = Path(tempfile.mkdtemp(prefix="tl-load-"))
    per_user = -(-args.jobs // args.users)
    settings = Settings(runs_dir=work / "runs", max_jobs=1, executor="process", offline=True,
                        max_queued_per_user=max(3, per_user), max_queued=max(50, args.jobs),
                        max_queued_per_address=max(6, args.jobs))   # every client is 127.0.0.1 here
    t_start = time.time()
    server = start_in_thread(build_app(settings), settings=settings)
    runner = server.lab.runner
    rss_idle = peak_rss_mb()
    print(f"app up at {server.url} in {time.time() - t_start:.1f} s; {args.users} users submit {args.jobs} runs",
          flush=True)
    sampler = Sampler(server.url, runner)
    sampler.start()

    clients = [Client(server.url, verbose=False, analytics_enabled=False) for _ in range(args.users)]
    submitted: list[tuple[int, object]] = []      # (user, gradio_client Job) in the order sent
    submit_lock = threading.Lock()
    options = [json.dumps({**OPTIONS, "seed": i}) for i in range(args.jobs)]

    def submit(i: int) -> None:
        user = i % args.users
        job = clients[user].submit(MODEL, None, STRATEGY, EPOCHS, options[i], api_name="/train")
        with submit_lock:
            submitted.append((user, job))

    # users submit in rounds (each user's 2nd run after everyone's 1st), a few at a time
    threads = []
    for i in range(args.jobs):
        t = threading.Thread(target=submit, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.1)
    for t in threads:
        t.join(max(1.0, deadline - time.time()))

    results, lost = [], []
    for user, job in submitted:
        try:
            status, metrics, run_id = job.result(timeout=max(1.0, deadline - time.time()))
            results.append({"user": user, "run_id": run_id, **{k: metrics.get(k) for k in
                            ("state", "seq", "submitted", "started", "ended", "message")}})
        except Exception as exc:  # timed out or refused: counted as lost
            lost.append({"user": user, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
    sampler.done.set()
    sampler.join(5)
    wall = time.time() - t_start

    finished = [r for r in results if r["state"] == "finished"]
    by_seq = sorted(results, key=lambda r: r["seq"] or 0)
    fifo = all((b["started"] or 0) >= (a["started"] or 0) for a, b in zip(by_seq, by_seq[1:]))
    one_at_a_time = all((b["started"] or 0) >= (a["ended"] or 0) - 1e-3 for a, b in zip(by_seq, by_seq[1:]))
    run_seconds = [r["ended"] - r["started"] for r in finished if r["started"] and r["ended"]]
    waits = [r["started"] - r["submitted"] for r in finished if r["started"] and r["submitted"]]
    out = {
        "what": "8 users x 2 tiny runs through /train, max_jobs=1, process executor (bench/load.py)",
        "command": "python bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "run": {"model": MODEL, "strategy": STRATEGY, "epochs": EPOCHS, "options": OPTIONS},
        "users": args.users, "jobs": args.jobs, "finished": len(finished),
        "lost": len(lost) + (args.jobs - len(submitted)),
        "fifo_order": fifo, "one_at_a_time": one_at_a_time,
        "wall_s": round(wall, 1),
        "run_s": {"median": round(statistics.median(run_seconds), 1) if run_seconds else None,
                  "max": round(max(run_seconds), 1) if run_seconds else None},
        "queue_wait_s_max": round(max(waits), 1) if waits else None,
        "page_ms": {path: {"n": len(v), "p50": round(percentile(v, 0.5), 1), "p95": round(percentile(v, 0.95), 1),
                           "max": round(max(v), 1) if v else None}
                    for path, v in sampler.times.items()},
        "page_errors": sampler.errors,
        "web_process_rss_mb": {"after_start": round(rss_idle, 0), "peak": round(peak_rss_mb(), 0)},
        "torch_in_web_process": "torch" in sys.modules,
        "failures": [r for r in results if r["state"] != "finished"] + lost,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")

    print()
    print(f"{'runs finished':<34}{len(finished)} / {args.jobs} (lost {out['lost']})")
    print(f"{'FIFO order, one at a time':<34}{fifo}, {one_at_a_time}")
    print(f"{'wall time':<34}{wall:.0f} s (run median {out['run_s']['median']} s, longest wait "
          f"{out['queue_wait_s_max']} s)")
    for path, m in out["page_ms"].items():
        print(f"{'GET ' + path + ' while training (ms)':<34}p50 {m['p50']}  p95 {m['p95']}  "
              f"max {m['max']}  (n={m['n']})")
    print(f"{'web process peak RSS':<34}{out['web_process_rss_mb']['peak']:.0f} MB "
          f"(after start {out['web_process_rss_mb']['after_start']:.0f} MB); torch imported: "
          f"{out['torch_in_web_process']}")
    for failure in out["failures"]:   # their times are in no figure above (only finished runs are timed)
        print(f"FAILED run: {failure}")
    print(f"written: {args.out}")

    for client in clients:
        try:
            client.close()
        except Exception:
            pass
    server.stop()
    ok = len(finished) == args.jobs and fifo and one_at_a_time and not out["torch_in_web_process"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
