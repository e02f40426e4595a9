"""3. A run driven through the app's API (gradio_client -> /train) vs `train_run` with the same run.json,
in one process; then the deployment configuration, each side its own process (app_process.py).

Rounds rotate the order of the three sides (app, direct on a worker thread, direct on the main
thread); ratios are the median of the per-round ratios, with their spread."""
from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import tempfile
import threading
from pathlib import Path

from bench.data import IMAGE_MODEL
from bench.harness import Clock, Events, free_port, interleave, log, paired_ratios, require_finished, rnd, summary


def run(cfg: dict) -> dict:
    try:
        import app as app_module
        from gradio_client import Client

        from tl_ui.core.settings import Settings
    except Exception as exc:  # the app is being written by someone else: say so, do not fail
        return {"skipped": f"app API not available ({type(exc).__name__}: {exc})"}
    from tl_ui.app.server import start_in_thread

    work = Path(tempfile.mkdtemp(prefix="tlbench-app-"))
    settings = Settings(runs_dir=work / "runs", offline=True, port=free_port())
    server = start_in_thread(app_module.build_app(settings), port=settings.port, settings=settings)
    client = None
    try:
        client = Client(server.url, verbose=False)
        endpoints = sorted(client.view_api(return_format="dict", print_info=False).get("named_endpoints", {}))
        if "/train" not in endpoints:
            return {"skipped": f"app API not available: no /train endpoint (has {endpoints})"}
        options = {"max_examples": cfg["n"], "seed": 0}
        first = _via_app(client, work, cfg["epochs"], options)  # also warms the app (first request, unpacking)
        log(f"app warm-up run: {first['wall_s']:.2f} s")
        run_json = Path(first["run_dir"]) / "run.json"
        _direct(run_json, in_thread=True)  # warms the direct side the same way (first train_run in this thread)
        sides = {"app": lambda: _via_app(client, work, cfg["epochs"], options),
                 "direct": lambda: _direct(run_json, in_thread=True),
                 "main": lambda: _direct(run_json, in_thread=False)}
        runs = interleave({k: _logged(k, f) for k, f in sides.items()}, cfg["rounds"])
        try:
            from bench.sections import app_process

            separate = app_process.run(cfg)
        except Exception as exc:  # keep the in-process result
            separate = {"error": f"{type(exc).__name__}: {exc}"}
        return _summarise(runs, first, run_json, cfg, options, endpoints, separate)
    finally:
        with contextlib.suppress(Exception):
            client.close()
        import logging

        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # its shutdown of open streams is noisy
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _logged(name, fn):
    def call():
        r = fn()
        log(f"app section {name}: {r['wall_s']:.2f} s")
        return r
    return call


def _via_app(client, work: Path, epochs: int, options: dict) -> dict:
    with Clock() as c:
        job = client.submit(IMAGE_MODEL, None, "linear_probe", epochs, json.dumps(options), api_name="/train")
        # Block on the result rather than iterating the job: gradio_client's Job.__next__ polls with
        # time.sleep(0.001), a thousand wake-ups a second that would compete with the engine for the GIL and
        # the CPU here, where the client shares the server's process (a real client does not).
        status, metrics, run_id = job.result()
    updates = len(job.outputs())  # the streamed updates still all arrived
    require_finished(metrics, f"app: run {run_id} through /train")
    run_dir = next((work / "runs").rglob(f"{run_id}/run.json")).parent
    return {"wall_s": c.wall, "cpu_s": c.cpu, "engine_s": engine_seconds(run_dir), "streamed_updates": updates,
            "run_dir": str(run_dir), "accuracy": metrics.get("accuracy")}


def engine_seconds(run_dir: Path) -> float:
    """RunStarted -> RunFinished from a run's events.jsonl (model loading excluded)."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return events[-1]["time"] - events[0]["time"]


def _direct(run_json: Path, in_thread: bool) -> dict:
    """train_run with the app's run.json; on a fresh worker thread as the app's Runner does, or on this
    (main) thread (which thread runs torch has changed its speed by up to +-20% in this process)."""
    from tl_ui.core.config import RunConfig
    from tl_ui.engine import train_run

    config = RunConfig.load(run_json)
    ev = Events()
    with tempfile.TemporaryDirectory(prefix="tlbench-direct-") as d:
        box: dict = {}
        with Clock() as c:
            if in_thread:
                t = threading.Thread(target=lambda: box.update(res=train_run(config, Path(d) / "run", on_event=ev)))
                t.start()
                t.join()
            else:
                box["res"] = train_run(config, Path(d) / "run", on_event=ev)  # loads config.data_path itself
    res = box["res"]
    require_finished(res, "app: train_run with the app's run.json")
    return {"wall_s": c.wall, "cpu_s": c.cpu, "engine_s": ev.of("finished")[0].time - ev.of("started")[0].time,
            "accuracy": res.metrics["accuracy"]}


def _summarise(runs: dict, first: dict, run_json: Path, cfg: dict, options: dict, endpoints, separate) -> dict:
    app, direct, main = runs["app"], runs["direct"], runs["main"]

    def col(rs, key):
        return [r[key] for r in rs]

    around = {k: [r["wall_s"] - r["engine_s"] for r in rs] for k, rs in (("app", app), ("direct", direct))}
    eng = statistics.median(col(direct, "engine_s"))
    return {
        "settings": {"model": IMAGE_MODEL, "strategy": "linear_probe", "epochs": cfg["epochs"], "options": options,
                     "rounds": cfg["rounds"], "server": "tl_ui.app.server.start_in_thread (the app's own server)",
                     "endpoints": endpoints, "config": json.loads(run_json.read_text()),
                     "warm_up": "one untimed run on each side first (app request; train_run on a worker thread)",
                     "estimator": "median of per-round ratios; rounds rotate the order of the sides"},
        "app_runs": [{k: v for k, v in r.items() if k != "run_dir"} for r in app], "direct_runs": direct,
        "main_thread_runs": main, "warmup_run": {k: v for k, v in first.items() if k != "run_dir"},
        "app_wall_s": summary(col(app, "wall_s")), "direct_wall_s": summary(col(direct, "wall_s")),
        "main_thread_wall_s": summary(col(main, "wall_s")),
        "app_cpu_s": summary(col(app, "cpu_s")), "direct_cpu_s": summary(col(direct, "cpu_s")),
        # headline: app vs train_run on a worker thread, like the app's own Runner: what the app adds
        "ratio": paired_ratios(col(app, "wall_s"), col(direct, "wall_s")),
        "ratio_cpu": paired_ratios(col(app, "cpu_s"), col(direct, "cpu_s")),
        "ratio_vs_main_thread": paired_ratios(col(app, "wall_s"), col(main, "wall_s")),
        "engine_in_app_over_direct": paired_ratios(col(app, "engine_s"), col(direct, "engine_s")),
        # where the difference goes: the app's own time around the engine (request, data, queue, polling) vs
        # the direct call's (data loading); and the ratio if the engine ran as fast inside the app as outside
        "app_outside_engine_s": summary(around["app"]), "direct_outside_engine_s": summary(around["direct"]),
        "engine_inside_app_s": summary(col(app, "engine_s")), "engine_direct_s": summary(col(direct, "engine_s")),
        "ratio_if_engine_equal": rnd((eng + statistics.median(around["app"]))
                                     / (eng + statistics.median(around["direct"])), 3),
        "note": "CPU seconds of the whole process: the server, the runner thread and gradio_client itself.",
        "separate_processes": separate,
    }
