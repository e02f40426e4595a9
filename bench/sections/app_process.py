"""3b. The deployment configuration: `python app.py` as its own process, driven by gradio_client from
the bench, vs the command line as its own process; warm against warm, cold against cold.

* warm: the server has already answered one run; the CLI side is a fresh process that runs the same
  `python -m tl_ui train --config run.json` once untimed (imports, first-call allocations) and then
  once timed (`python -m bench.sections.app_process run.json OUT`). Rounds alternate which side goes
  first; the ratio is the median of the per-round ratios.
* cold: the first run a freshly started server does vs a fresh `python -m tl_ui train` process.

Wall seconds are request -> result (app) and the `train` call (CLI): data loading, model loading,
training, export; engine seconds are RunStarted -> RunFinished from each run's events.jsonl."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.data import IMAGE_MODEL
from bench.harness import (ROOT, Clock, alternating, child_env, free_port, log, paired_ratios, require_finished, rnd,
                           stop_process, summary, wait_http)


def run(cfg: dict) -> dict:
    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="tlbench-appproc-"))
    port = free_port()
    env = child_env(TL_PORT=str(port), TL_RUNS_DIR=str(work / "runs"), TL_OFFLINE="1")
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    options = {"max_examples": cfg["n"], "seed": 0}
    try:
        if wait_http(f"http://127.0.0.1:{port}/", 120, server) is None:
            return {"skipped": "python app.py did not answer"}
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)

        def app() -> dict:
            with Clock() as c:
                job = client.submit(IMAGE_MODEL, None, "linear_probe", cfg["epochs"], json.dumps(options),
                                    api_name="/train")
                _, metrics, run_id = job.result()
            run_dir = next((work / "runs").rglob(f"{run_id}/run.json")).parent
            require_finished(run_dir, f"app process: run {run_id} through /train")
            return {"wall_s": c.wall, "engine_s": _engine_seconds(run_dir), "run_dir": str(run_dir)}

        cold_app = app()  # the server's first run: imports the engine, loads torch
        run_json = Path(cold_app["run_dir"]) / "run.json"
        cold_cli = _cli_cold(run_json, work, env)
        log(f"app (own process) cold: app {cold_app['wall_s']:.2f} s, fresh CLI process {cold_cli['wall_s']:.2f} s")
        apps, clis = [], []
        for order in alternating(cfg.get("process_rounds", 2), "app", "cli"):
            for side in order:
                r = app() if side == "app" else _cli_warm(run_json, work, env)
                (apps if side == "app" else clis).append(r)
                log(f"app (own process) warm {side}: wall {r['wall_s']:.2f} s, engine {r['engine_s']:.2f} s")
        return {
            "settings": {"rounds": len(apps), "warm": "server after one run vs a fresh CLI process after one "
                         "untimed run of the same config", "cold": "first run of a fresh server vs a fresh "
                         "`python -m tl_ui train` process (interpreter start and imports included)"},
            "app_runs": [{k: rnd(v) for k, v in x.items() if k != "run_dir"} for x in apps],
            "cli_runs": [{k: rnd(v) for k, v in x.items()} for x in clis],
            "ratio": paired_ratios([x["wall_s"] for x in apps], [x["wall_s"] for x in clis]),
            "ratio_engine": paired_ratios([x["engine_s"] for x in apps], [x["engine_s"] for x in clis]),
            "app_wall_s": summary(x["wall_s"] for x in apps), "cli_wall_s": summary(x["wall_s"] for x in clis),
            "cold": {"app_first_run_wall_s": rnd(cold_app["wall_s"]), "app_first_run_engine_s": rnd(cold_app["engine_s"]),
                     "cli_process_wall_s": rnd(cold_cli["wall_s"]), "cli_engine_s": rnd(cold_cli["engine_s"]),
                     "ratio": rnd(cold_app["wall_s"] / cold_cli["wall_s"], 3),
                     "ratio_engine": rnd(cold_app["engine_s"] / cold_cli["engine_s"], 3)},
        }
    finally:
        stop_process(server, 15)
        shutil.rmtree(work, ignore_errors=True)


def _engine_seconds(run_dir: Path) -> float:
    ev = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return ev[-1]["time"] - ev[0]["time"]


def _cli_cold(run_json: Path, work: Path, env: dict) -> dict:
    out = Path(tempfile.mkdtemp(prefix="tlbench-cli-", dir=work)) / "run"
    with Clock() as c:
        subprocess.run([sys.executable, "-m", "tl_ui", "train", "--config", str(run_json), "--out", str(out),
                        "--quiet"], cwd=ROOT, env=env, capture_output=True, timeout=900)
    require_finished(out, "app process: python -m tl_ui train in a fresh process")
    return {"wall_s": c.wall, "engine_s": _engine_seconds(out)}


def _cli_warm(run_json: Path, work: Path, env: dict) -> dict:
    out = Path(tempfile.mkdtemp(prefix="tlbench-cliw-", dir=work))
    proc = subprocess.run([sys.executable, "-m", "bench.sections.app_process", str(run_json), str(out)], cwd=ROOT,
                          env=env, check=True, capture_output=True, text=True, timeout=900)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm_cli_child(run_json: str, out: str) -> None:
    """In a fresh process: the CLI's `train` once untimed (warm-up), then once timed; prints one JSON line."""
    from tl_ui.cli.main import main

    timings = []
    for name in ("warmup", "timed"):
        run_dir = Path(out) / name
        with contextlib.redirect_stdout(io.StringIO()), Clock() as c:
            code = main(["train", "--config", run_json, "--out", str(run_dir), "--quiet"])
        require_finished(run_dir, f"app process: python -m tl_ui train (exit code {code}) in {run_dir}")
        timings.append({"wall_s": c.wall, "engine_s": _engine_seconds(run_dir)})
    print(json.dumps({**timings[1], "warmup_wall_s": timings[0]["wall_s"], "at": time.time()}))


if __name__ == "__main__":
    warm_cli_child(sys.argv[1], sys.argv[2])
