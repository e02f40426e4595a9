"""Inference under load (issue 36): 8 users, each with a run of their own (4 image, 4 text), make 20 try-it
requests through `/predict` and 3 "Why this answer?" explanations while two other runs train, on this
2-core machine; then the same with the inference worker killed (SIGKILL) half-way.

Reports the try-it latency (p50, p95, as each user's client sees it: upload, Gradio's queue, the
inference worker), the explanations' latency, the web process's peak RSS and the inference worker's,
lost answers (none may be lost: a request cut off by the kill must say so in one sentence, and the
user's retry must be answered) and crossed ones (every answer is compared with what `Predictor.load`
gives for that user's own input in a separate process), and the ratio of a quiet try-it answer
from a kept model to a direct `Predictor.predict_with_set` / `Predictor.predict` call on the same inputs,
measured in the same run. The load average is recorded with every phase.

The app runs in a fresh process (`child`): the web process, which must never import torch (checked).

    python -m bench.sections.inference_load [--quick]    # writes bench/inference-load-results.json
    python bench/run.py --only inference_load [--quick]
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from bench.harness import ROOT, OthersLoad, child_env, load_avg, log, require_finished, wait_for_quiet

PROFILE = {"quick": {"users": 8, "tries": 6, "explanations": 1, "quiet_rounds": 10, "train_examples": 40},
           "full": {"users": 8, "tries": 20, "explanations": 3, "quiet_rounds": 20, "train_examples": 60}}
RESULTS = ROOT / "bench" / "inference-load-results.json"
TRAINING = {"strategy": "full", "max_examples": 300, "epochs": 200}   # the two runs that train throughout
MATCH = 1e-4   # an answer is the user's own when every probability is within this of the direct one


def run(cfg: dict) -> dict:
    """The section, as bench/run.py calls it: the app in a fresh process; its JSON line back."""
    proc = subprocess.run([sys.executable, "-m", "bench.sections.inference_load", "--child", json.dumps(cfg)],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=3600)
    line = next((l for l in reversed(proc.stdout.splitlines()) if l.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        return {"error": (proc.stderr or proc.stdout)[-3000:]}
    return json.loads(line)


def pct(values: list, q: float):
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


def latency(ms: list) -> dict:
    return {"n": len(ms), "p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95), "max_ms": round(max(ms), 1) if ms else None}


def status_mb(pid, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Memory(threading.Thread):
    """The web process's and the inference workers' resident memory, sampled every 0.2 s (peaks kept)."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.lab, self.web, self.worker, self.done = lab, 0.0, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.web = max(self.web, status_mb("self"))
            for pid in self.lab.inference.worker_pids():
                self.worker = max(self.worker, status_mb(pid), status_mb(pid, "VmHWM"))


def _inputs(work: Path, users: int, tries: int) -> list[list[str]]:
    """Each user's own inputs: distinct sample digits (files) for image users, distinct reviews for text users."""
    import csv

    from tl_ui.data import sample_dataset_path

    with zipfile.ZipFile(sample_dataset_path("image")) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        pictures = []
        for k, name in enumerate(names[: (users // 2) * tries]):
            path = work / "inputs" / f"{k:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(z.read(name))
            pictures.append(str(path))
    with open(sample_dataset_path("text"), encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)][: (users - users // 2) * tries]
    out = []
    for user in range(users):
        pool, k = (pictures, user) if user < users // 2 else (texts, user - users // 2)
        out.append(pool[k * tries:(k + 1) * tries])
    return out


def _same(answer: dict, expected: dict) -> bool:
    got = answer.get("probabilities") or {}
    return set(got) == set(expected) and all(abs(float(got[c]) - float(p)) <= MATCH for c, p in expected.items())


def _phase(lab, clients, names, runs, inputs, expected, cfg, kill: bool) -> dict:
    """Every user's tries (and explanations) at once; with `kill`, the inference worker is killed half-way."""
    from gradio_client import handle_file

    from tl_ui.jobs.supervisor import Ending, ended_message
    from tl_ui.service.owners import Owner

    crash = ended_message("inference", Ending.CRASHED)
    tries, total = cfg["tries"], cfg["tries"] * len(names)
    explain_at = {round((k + 1) * tries / (cfg["explanations"] + 1)) for k in range(cfg["explanations"])}
    record = {"try_ms": [], "explain_ms": [], "lost": 0, "crossed": 0, "cut_off": 0, "answered_on_retry": 0,
              "explain_failed": 0, "errors": []}
    lock, done_count, killed = threading.Lock(), [0], {}

    def one_try(user: int, i: int) -> None:
        item, image = inputs[user][i], user < len(names) // 2
        for attempt in (1, 2):   # a person whose answer was cut off clicks again
            start, asked_at = time.perf_counter(), time.time()
            try:
                answer = clients[user].predict(runs[user], handle_file(item) if image else None, "" if image else item,
                                               api_name="/predict")
            except Exception as exc:  # noqa: BLE001 - the sentence the user reads
                with lock:
                    if crash in str(exc) and attempt == 1:
                        record["cut_off"] += 1
                        continue
                    record["lost"] += 1
                    record["errors"].append(str(exc)[:300])
                return
            with lock:
                record["try_ms"].append((time.perf_counter() - start) * 1000)
                record["answered_on_retry"] += attempt == 2
                if killed.get("at") and asked_at > killed["at"] and "first_answer_after_kill_s" not in killed:
                    killed["first_answer_after_kill_s"] = round(time.time() - killed["at"], 1)
                record["crossed"] += not _same(answer, expected[user][i])
            return

    def one_explanation(user: int, i: int) -> None:
        owner, item = Owner("user", names[user]), inputs[user][i]
        for attempt in (1, 2):
            start = time.perf_counter()
            try:
                lab.explain(owner, runs[user], **({"image": item} if user < len(names) // 2 else {"text": item}))
            except Exception as exc:  # noqa: BLE001
                with lock:
                    if crash in str(exc) and attempt == 1:
                        record["cut_off"] += 1
                        continue
                    record["explain_failed"] += 1
                    record["errors"].append(f"explain: {str(exc)[:200]}")
                return
            with lock:
                record["explain_ms"].append((time.perf_counter() - start) * 1000)
                record["answered_on_retry"] += attempt == 2
            return

    def user_walk(user: int) -> None:
        for i in range(tries):
            if i in explain_at:
                one_explanation(user, i)
            one_try(user, i)
            with lock:
                done_count[0] += 1

    def killer() -> None:
        while done_count[0] < total // 2:
            time.sleep(0.01)
        pids = lab.inference.worker_pids()
        killed.update(pid=pids[0] if pids else None, after_tries=done_count[0], at=time.time())
        if pids:
            os.kill(pids[0], signal.SIGKILL)

    others, started = OthersLoad().start(), time.time()
    threads = [threading.Thread(target=user_walk, args=(u,)) for u in range(len(names))]
    if kill:
        threads.append(threading.Thread(target=killer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(1800)
    return {"try": latency(record["try_ms"]), "explain": latency(record["explain_ms"]),
            **{k: record[k] for k in ("lost", "crossed", "cut_off", "answered_on_retry", "explain_failed")},
            "requests": total, "errors": record["errors"][:5], "killed": killed or None,
            "wall_s": round(time.time() - started, 1), "load_avg_after": load_avg(), "others_share": others.share()}


def _quiet(clients, runs, inputs, direct, cfg, users: int) -> dict:
    """No training, one user at a time: a try-it answer from a kept model through `/predict`, and the same
    input through a direct `Predictor` call in its own process, in turns (A, B, B, A, ...); ratios per round."""
    from gradio_client import handle_file

    from bench.harness import alternating, paired_ratios

    out = {"waited_for_quiet": wait_for_quiet(timeout_s=float(os.environ.get("TLBENCH_MAX_WAIT", 300)))}
    for index in (0, users // 2):
        image = index < users // 2
        rounds = alternating(cfg["quiet_rounds"] + 2)
        tries, with_set, plain = [], [], []
        for round_, order in enumerate(rounds):
            item = inputs[index][round_ % len(inputs[index])]
            for side in order:
                if side == "A":
                    start = time.perf_counter()
                    clients[index].predict(runs[index], handle_file(item) if image else None, "" if image else item,
                                           api_name="/predict")
                    tries.append((time.perf_counter() - start) * 1000)
                else:
                    direct.stdin.write(json.dumps({"run": index, "item": item}) + "\n")
                    direct.stdin.flush()
                    timing = json.loads(direct.stdout.readline())
                    with_set.append(timing["with_set_ms"])
                    plain.append(timing["predict_ms"])
        tries, with_set, plain = tries[2:], with_set[2:], plain[2:]   # the first rounds load and warm the model
        out["image" if image else "text"] = {
            "try_it": latency(tries), "direct_with_set": latency(with_set), "direct_predict": latency(plain),
            "ratio_to_direct_with_set": paired_ratios(tries, with_set, 2),
            "ratio_to_direct_predict": paired_ratios(tries, plain, 2)}
    out["load_avg"] = load_avg()
    return out


def _threads_ab(direct, inputs, users: int) -> dict:
    """One answer's time with one torch thread and with two, in turns, while the two runs train (why the
    inference worker computes each answer on one thread: tl_ui/jobs/inference/pool.py)."""
    out = {"load_avg": load_avg()}
    for index in (0, users // 2):
        direct.stdin.write(json.dumps({"threads_ab": index, "item": inputs[index][0]}) + "\n")
        direct.stdin.flush()
        times = json.loads(direct.stdout.readline())
        out["image" if index < users // 2 else "text"] = {f"{n}_thread{'s' if n == '2' else ''}": latency(ms)
                                                          for n, ms in times.items()}
    return out


def _keep_models(lab, names, runs) -> None:
    """Each user's model loaded, as Results does when a user opens their run (the load phase times kept models)."""
    from tl_ui.service.owners import Owner

    for name, run_id in zip(names, runs):
        owner = Owner("user", name)
        lab.inference.call(owner.id, "load", {"run_dir": str(lab.run(owner, run_id).path.resolve())})


def child(cfg: dict) -> dict:
    from gradio_client import Client

    from tl_ui.app.server import start_in_thread
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    work = Path(tempfile.mkdtemp(prefix="tl-inference-load-"))
    names = [f"user{u}" for u in range(cfg["users"])]
    settings = Settings(runs_dir=work / "runs", max_jobs=2, offline=True, max_queued_per_user=3,
                        auth=tuple((n, "pw") for n in names + ["trainer"]))
    out = {"load_avg_start": load_avg(), "settings": {k: getattr(settings, k) for k in (
        "max_jobs", "inference_workers", "inference_memory_gb", "inference_models_mb", "inference_max_seconds",
        "inference_max_per_user", "inference_max_in_flight")}, "profile": cfg}
    server = start_in_thread(build_app(settings), settings=settings)
    lab = server.lab
    memory = Memory(lab)
    memory.start()
    out["web_rss_after_start_mb"] = round(status_mb("self"), 1)
    clients = [Client(server.url, auth=(n, "pw"), verbose=False, analytics_enabled=False) for n in names]
    trainer = Client(server.url, auth=("trainer", "pw"), verbose=False, analytics_enabled=False)

    log(f"{len(names)} users train a run each (4 image, 4 text linear probes)")
    options = json.dumps({"max_examples": cfg["train_examples"], "seed": 1})
    jobs = [c.submit("efficientnet_lite0" if u < len(names) // 2 else "minilm_l6", None, "linear_probe", 0, options,
                     api_name="/train") for u, c in enumerate(clients)]
    results = [job.result(timeout=1800) for job in jobs]
    for user, (_, metrics, _) in zip(names, results):
        require_finished(metrics, f"inference load: {user}'s run")
    runs = [run_id for _, _, run_id in results]
    run_dirs = [str(lab.run(Owner("user", n), r).path) for n, r in zip(names, runs)]
    inputs = _inputs(work, len(names), cfg["tries"])

    log("direct baseline: Predictor.load in a process of its own (answers for every input)")
    direct = subprocess.Popen([sys.executable, "-m", "bench.sections.inference_direct"], cwd=ROOT, env=child_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    from tl_ui.jobs.inference.pool import REQUEST_TORCH_THREADS

    direct.stdin.write(json.dumps({"runs": [{"run_dir": d, "items": i} for d, i in zip(run_dirs, inputs)],
                                   "torch_threads": REQUEST_TORCH_THREADS}) + "\n")
    direct.stdin.flush()
    expected = json.loads(direct.stdout.readline())["answers"]
    out["quiet"] = _quiet(clients, runs, inputs, direct, cfg, len(names))

    log("two runs start training; 8 users try and explain at once")
    training = [trainer.submit("efficientnet_lite0", None, TRAINING["strategy"], TRAINING["epochs"],
                               json.dumps({"max_examples": TRAINING["max_examples"], "seed": s}), api_name="/train")
                for s in (1, 2)]
    deadline = time.time() + 300
    while lab.runner.busy < 2 and time.time() < deadline:
        time.sleep(0.5)
    _keep_models(lab, names, runs)
    out["threads_while_two_runs_train"] = _threads_ab(direct, inputs, len(names))
    direct.stdin.close()
    direct.wait(60)
    out["waited_for_quiet_before_load"] = wait_for_quiet(max_share=0.6,   # our own two runs train meanwhile
                                                         timeout_s=float(os.environ.get("TLBENCH_MAX_WAIT", 300)))
    memory.web = memory.worker = 0.0
    out["load"] = {**_phase(lab, clients, names, runs, inputs, expected, cfg, kill=False),
                   "training_runs_busy": lab.runner.busy, "web_peak_rss_mb": round(memory.web, 1),
                   "worker_peak_rss_mb": round(memory.worker, 1)}
    log(f"load: {out['load']['try']}; lost {out['load']['lost']}, crossed {out['load']['crossed']}")
    _keep_models(lab, names, runs)
    memory.web = memory.worker = 0.0
    out["kill"] = {**_phase(lab, clients, names, runs, inputs, expected, cfg, kill=True),
                   "training_runs_busy": lab.runner.busy, "web_peak_rss_mb": round(memory.web, 1),
                   "worker_peak_rss_mb": round(memory.worker, 1)}
    log(f"kill: {out['kill']['try']}; lost {out['kill']['lost']}, crossed {out['kill']['crossed']}, "
        f"cut off {out['kill']['cut_off']}")
    for job in lab.runner.jobs():
        if not job.done:
            lab.runner.stop(job.id)
    out["training_runs"] = [r[1].get("state") for r in (t.result(timeout=300) for t in training)]
    memory.done.set()
    out["web_peak_rss_mb_whole_run"] = round(status_mb("self", "VmHWM"), 1)
    out["torch_in_web_process"] = any(m in sys.modules for m in ("torch", "transformers"))
    out["load_avg_end"] = load_avg()
    server.stop()
    return out


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import logging
        import warnings

        logging.basicConfig(level=logging.WARNING)
        warnings.filterwarnings("ignore")
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return
    mode = "quick" if args.quick else "full"
    result = {"mode": mode, "command": "python -m bench.sections.inference_load" + (" --quick" if args.quick else ""),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), **run(PROFILE[mode])}
    path = RESULTS.with_name("inference-load-results-quick.json") if args.quick else RESULTS
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result.get(k) for k in ("quiet", "load", "kill", "web_peak_rss_mb_whole_run",
                                                 "torch_in_web_process")}, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
