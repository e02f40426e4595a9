"""Measuring on a shared machine: clocks, CPU time, A/B interleaving, robust summaries, machine
information and the results files. No torch at import time (the tests import this on toy inputs)."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"            # the latest whole run (any mode)
RESULTS_FULL = ROOT / "bench" / "results-full.json"  # the full run behind docs/benchmarks.md, plus re-runs


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rnd(x: Optional[float], n: int = 3) -> Optional[float]:
    return None if x is None else round(float(x), n)


# -- summaries ----------------------------------------------------------------------------------

def summary(xs: Iterable[float], n: int = 3) -> dict:
    """Median with its spread (min, max) and every value: what every timing is reported as."""
    xs = [float(x) for x in xs]
    if not xs:
        return {"n": 0, "median": None, "min": None, "max": None, "all": []}
    out = {"n": len(xs), "median": rnd(statistics.median(xs), n), "min": rnd(min(xs), n), "max": rnd(max(xs), n)}
    if len(xs) >= 4:  # many values (e.g. single steps): the middle half as well
        q1, _, q3 = statistics.quantiles(xs, n=4)
        out.update(q1=rnd(q1, n), q3=rnd(q3, n))
    out["all"] = [rnd(x, n) for x in xs]
    return out


def mean_sd(xs: Iterable[float], n: int = 4) -> dict:
    """Mean and sample standard deviation (ddof=1; 0 for a single value), for accuracies over seeds."""
    xs = [float(x) for x in xs if x == x]  # drops NaN (failed runs)
    if not xs:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": rnd(statistics.fmean(xs), n), "sd": rnd(statistics.stdev(xs) if len(xs) > 1 else 0.0, n),
            "min": rnd(min(xs), n), "max": rnd(max(xs), n), "n": len(xs)}


def paired_ratios(a: Sequence[float], b: Sequence[float], n: int = 3) -> dict:
    """a[i] / b[i] for rounds measured side by side, summarised as median and spread (never the best round)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"need equally many rounds on both sides, got {len(a)} and {len(b)}")
    return summary([x / y for x, y in zip(a, b)], n)


def fmt_spread(s: Optional[dict], n: int = 2) -> str:
    """'1.23 (1.10-1.31, 3 rounds)' from a summary()."""
    if not s or s.get("median") is None:
        return "–"
    if s.get("n", 1) <= 1:
        return f"{s['median']:.{n}f}"
    return f"{s['median']:.{n}f} ({s['min']:.{n}f}-{s['max']:.{n}f}, {s['n']} rounds)"


# -- clocks ----------------------------------------------------------------------------------------

def cpu_s() -> float:
    """CPU seconds of this process, all threads (user + system): a cross-check beside wall time, which
    swings by 2-3x on a machine others are using while the CPU time of the same work moves far less."""
    return time.process_time()


class Clock:
    """`with Clock() as c: ...` then c.wall, c.cpu."""

    wall = cpu = 0.0

    def __enter__(self):
        self._w, self._c = time.perf_counter(), cpu_s()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self._w, cpu_s() - self._c


class Events:
    """An engine `on_event` listener that keeps every event with the wall and CPU clock at its arrival
    (the engine calls it synchronously in its training thread, right after the event)."""

    def __init__(self):
        self.items: list = []

    def __call__(self, event) -> None:
        event._bench_wall, event._bench_cpu = time.perf_counter(), cpu_s()
        self.items.append(event)

    def of(self, kind: str) -> list:
        return [e for e in self.items if e.kind == kind]


def alternating(rounds: int, a: str = "A", b: str = "B") -> list[tuple[str, str]]:
    """Orders for `rounds` A/B rounds, alternating which side goes first: AB, BA, AB, ... (so a drift in
    machine load, or a warm cache left by the side before, favours neither side)."""
    return [(a, b) if r % 2 == 0 else (b, a) for r in range(rounds)]


def interleave(sides: dict, rounds: int) -> dict[str, list]:
    """Run each zero-argument callable in `sides` once per round, rotating which goes first
    (A B C, C B A, A B C ... for three: every side in every position); returns each side's results in
    round order, so result i of two sides can be paired."""
    names = list(sides)
    out: dict[str, list] = {k: [] for k in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            out[name].append(sides[name]())
    return out


# -- runs that did not finish --------------------------------------------------------------------

class RunFailed(RuntimeError):
    """A run a benchmark measures did not finish: its seconds, memory or accuracy are no figure."""


def require_finished(run, what: str, *, stopped_ok: bool = False):
    """`run` when the run it describes finished, else raise RunFailed naming `what` and the run's own message.
    Every section calls this on every run it measures, so a refused or crashed run stops the section
    instead of lending its time or memory to a figure. `run`: a RunResult (`status`), a runner job
    (`state`), a dict with "status" or "state" (bench/sections/app_run.py, a status.json), or a run folder
    (its status.json). `stopped_ok`: a run the benchmark itself stopped on purpose counts too."""
    state, message = _run_state(run)
    if state == "finished" or (stopped_ok and state == "stopped"):
        return run
    raise RunFailed(f"{what}: the run {state or 'left no status'}"
                    + (f": {message}" if message else "") + " — a benchmark does not measure a run that did not finish")


def _run_state(run) -> tuple[Optional[str], str]:
    if isinstance(run, (str, Path)):
        status = Path(run) / "status.json"
        try:
            run = json.loads(status.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, f"no readable {status}"
    if isinstance(run, dict):
        return run.get("status") or run.get("state"), str(run.get("message") or run.get("error") or "")
    state = getattr(run, "status", None) or getattr(run, "state", None)
    return state, str(getattr(run, "message", "") or "")


# -- other people's load ------------------------------------------------------------------------

def _busy_jiffies() -> Optional[tuple[float, float]]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / hz, sum(fields[:8]) / hz


def _own_cpu() -> float:
    """CPU seconds of this process and of the child processes it has waited for (workers, servers)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return cpu_s() + r.ru_utime + r.ru_stime


class OthersLoad:
    """The share of the machine's CPU used by other processes between start() and share():
    (machine busy seconds - this process's and its finished children's CPU seconds) / (elapsed x cores).
    Call share() after the children started meanwhile have ended (a running child counts as other)."""

    def start(self) -> "OthersLoad":
        self._m, self._c, self._t = _busy_jiffies(), _own_cpu(), time.perf_counter()
        return self

    def share(self) -> Optional[float]:
        m = _busy_jiffies()
        if m is None or self._m is None:
            return None
        wall = max(time.perf_counter() - self._t, 1e-6)
        others = (m[0] - self._m[0]) - (_own_cpu() - self._c)
        return rnd(max(others, 0.0) / (wall * (os.cpu_count() or 1)), 3)


def wait_for_quiet(max_share: float = 0.25, timeout_s: float = 900, window_s: float = 3.0) -> dict:
    """Wait (up to `timeout_s`) until other processes use less than `max_share` of the machine for two
    windows in a row: on a shared machine a test suite next door slows either side of a comparison 2-10x,
    and a time estimate measured then says nothing about a quiet machine. Returns what was waited."""
    t0, calm, share = time.perf_counter(), 0, None
    while time.perf_counter() - t0 < timeout_s:
        probe = OthersLoad().start()
        time.sleep(window_s)
        share = probe.share()
        if share is None:
            break
        calm = calm + 1 if share < max_share else 0
        if calm >= 2:
            break
    waited = rnd(time.perf_counter() - t0, 1)
    if waited and waited > 3 * window_s:
        log(f"waited {waited} s for other processes to use < {max_share:.0%} of the CPU (last: {share})")
    return {"waited_s": waited, "others_share": share, "quiet": share is not None and share < max_share}


# -- the machine and the code -------------------------------------------------------------------

def machine_info() -> dict:
    import torch

    cpu = "unknown"
    with contextlib.suppress(OSError):
        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                    if l.startswith("model name")), cpu)
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "torch_default_threads": torch.get_num_threads(),
            "mem_total_gb": None, "load_avg_at_start": load_avg(), "cuda": torch.cuda.is_available()}
    with contextlib.suppress(Exception):
        import psutil

        info["mem_total_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    for name in ("timm", "transformers", "peft", "accelerate", "gradio", "gradio_client"):
        with contextlib.suppress(Exception):
            info[name] = __import__(name).__version__
    info.update(git_state())
    with contextlib.suppress(Exception):
        from tl_ui.core.config import STRATEGY_DEFAULTS, RunConfig

        info["engine_defaults"] = {"batch_size": RunConfig().batch_size, "strategies": STRATEGY_DEFAULTS,
                                   "early_stopping_patience": RunConfig().early_stopping_patience}
    return info


def load_avg() -> Optional[list]:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def git_state() -> dict:
    """HEAD and the files changed on top of it (others edit this tree while benchmarks run)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.rstrip()  # not lstrip: status lines start with a space

    with contextlib.suppress(Exception):
        return {"git_commit": git("rev-parse", "--short", "HEAD"),
                "git_uncommitted": [l[3:] for l in git("status", "--short", "--", "tl_ui", "app.py").splitlines()]}
    return {}


# -- results files --------------------------------------------------------------------------------

def load_results(path: Path) -> dict:
    if path.exists():
        with contextlib.suppress(ValueError):
            return json.loads(path.read_text())
    return {}


def write_json(path: Path, data) -> None:
    """Atomically: readers never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def save_results(results: dict, partial_rerun: bool) -> list[Path]:
    """bench/results.json holds the latest whole run; a full run is also kept as bench/results-full.json
    (the source of docs/benchmarks.md), which partial full-mode re-runs update alone."""
    full = results.get("mode") == "full"
    paths = ([] if partial_rerun and full else [RESULTS]) + ([RESULTS_FULL] if full else [])
    for path in paths:
        write_json(path, results)
    return paths


# -- processes and ports --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update({"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def wait_http(url: str, timeout: float, proc=None, interval: float = 0.05) -> Optional[float]:
    """Seconds until `url` answers 200 (None if it never does or `proc` dies first)."""
    import urllib.request

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            return None
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.perf_counter() - t0
        time.sleep(interval)
    return None


def stop_process(proc, grace: float = 10) -> None:
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
