"""The worker side: one run in a process of its own (`main`, payload on stdin) or inside a Ray
task (`run_payload`).

The worker names itself in status.json (`worker_pid`, `worker_host`), imports the train function
(torch for the real engine), then caps its memory: the address space it may add beyond what the
loaded libraries already map (RLIMIT_AS; with CUDA, which reserves huge address ranges, a
resident-memory watchdog instead). It trains with `should_stop` reading the run's stop file; the
engine writes events.jsonl and status.json, which the server follows. A local worker also ends
itself when the server process is gone.

A warm worker (`main` with TL_WORKER_WARM=1; tl_ui/jobs/executors/process.py) serves runs one after
another: one JSON payload per line on stdin, one JSON reply per run on the pipe TL_WORKER_REPLY_FD
names. Between runs it keeps pretrained models (tl_ui/engine/models/model_cache.py) and nothing else of a
run: each run's memory cap is lifted, torch's thread count restored, garbage collected and freed
memory handed back to the system. Only a run that finished or stopped by itself leaves the worker
warm; after any other end it exits, so the next run gets a fresh process.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

from tl_ui.jobs.caps import (cap_memory, lift_memory_cap, looks_like_memory, prepare_process, proc_status_kb,
                            watch_parent)
from tl_ui.jobs.executors.base import (DONE_STATES, INTERNAL_ERROR, StopFile, append_event, memory_message,
                                       train_options)
from tl_ui.jobs.supervisor import REPLY_FD_ENV
from tl_ui.contracts import RunState, run_state
from tl_ui.contracts.events import RunFailed
from tl_ui.core.runfolder import FAILED, FINISHED, RUNNING, STOPPED, RunFolder

log = logging.getLogger("tl_ui.worker")

ENGINE = "tl_ui.engine:train_run"   # the engine's public entry (tl_ui/engine/__init__.py)
# A spare worker (tl_ui/jobs/executors/process.py) imports this train function before its payload arrives,
# lowered to this priority, and ends with the server of this pid.
SPARE_ENV, SPARE_NICE_ENV, SPARE_PARENT_ENV = "TL_SPARE_TARGET", "TL_SPARE_NICE", "TL_SPARE_PARENT"
WARM_ENV = "TL_WORKER_WARM"
ENGINE_LAZY_IMPORTS = ("accelerate", "timm", "timm.data", "transformers", "sklearn.linear_model",
                       "sklearn.model_selection", "scipy.optimize", "safetensors.torch")
# A warm worker that holds more than this resident between runs retires (the next run gets a fresh one).
IDLE_MAX_MB = 2048


def make_payload(job, *, executor: str, target: str = ENGINE, memory_gb: float = 0.0,
                 parent_pid: Optional[int] = None, env: Optional[dict] = None,
                 sys_path: Optional[list] = None, nice: int = 0) -> dict:
    """Everything a worker needs, as plain JSON data (the config and the dataset as dicts): no pickle
    on the way in, since the dataset's items and labels come from a user's upload."""
    config = job.config.to_dict() if hasattr(job.config, "to_dict") else dict(job.config or {})
    dataset = dataclasses.asdict(job.dataset) if dataclasses.is_dataclass(job.dataset) else job.dataset
    return {"run_id": job.id, "run_dir": str(job.run_dir), "config": config, "dataset": dataset,
            "embedding_cache": getattr(job, "embedding_cache", None),
            "target": target, "executor": executor, "memory_gb": float(memory_gb or 0),
            "parent_pid": parent_pid, "env": dict(env or {}), "sys_path": list(sys_path or []), "nice": nice}


def _dataset(data):
    """The dataset back from the payload's plain dict (None: the engine reads config.data_path)."""
    if not isinstance(data, dict):
        return data
    from tl_ui.data import LabelledDataset

    return LabelledDataset(**data)


def run_payload(payload: dict, warm: bool = False) -> dict:
    """Train one run as `payload` says. Returns {"status", "message"}; the run folder holds the rest.
    `warm`: this process serves further runs, so the memory cap is lifted again afterwards."""
    prepare_process(payload)
    run_dir = Path(payload["run_dir"])
    run = RunFolder(run_dir)
    run.set_status(RUNNING, "", worker_pid=os.getpid(), worker_host=socket.gethostname(),
                   executor=payload.get("executor", "process"), **({"worker_runs": _SERVED[0]} if warm else {}))
    train = _resolve(payload.get("target") or ENGINE)     # imports torch for the real engine
    if warm:
        _keep_models()
    memory_gb = float(payload.get("memory_gb") or 0)
    threads = _torch_threads()
    watchdog = (cap_memory(memory_gb, lambda: _memory_exceeded(run, memory_gb), soft_only=warm) if memory_gb > 0
                else "none")
    try:
        return _train_one(payload, run, train, memory_gb)
    finally:
        if warm:
            _after_run(watchdog, threads)


def _train_one(payload: dict, run: RunFolder, train, memory_gb: float) -> dict:
    run_dir = run.path
    config = _config(payload["config"])
    stop = StopFile(run_dir)
    try:
        result = train(config, run_dir, on_event=None, should_stop=stop.is_set, dataset=_dataset(payload.get("dataset")),
                       **train_options(train, payload))
    except MemoryError:
        result = _fail(run, memory_message(memory_gb) if memory_gb else
                       "The training process ran out of memory. Try a smaller batch or image size.")
    except Exception:  # the engine should not raise; if a train function does, the run fails cleanly
        (run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        log.exception("run %s crashed", run_dir.name)
        result = _fail(run, INTERNAL_ERROR)
    state = run_state(getattr(result, "status", None) or FINISHED)
    state = state if state in DONE_STATES else FAILED
    message = getattr(result, "message", "") or ""
    if not run.state().done:  # a train function that does not record its end itself
        run.set_status(state, message)
    if state == FAILED and memory_gb and looks_like_memory(message, run_dir / "error.log"):
        message = memory_message(memory_gb)
        _fail(run, message)
    return {"status": state, "message": message}


def _memory_exceeded(run: RunFolder, gb: float) -> None:
    """The CUDA watchdog's last act before the worker exits: the run fails with the memory sentence."""
    run.remove_partial_exports()
    _fail(run, memory_message(gb))


def _fail(run: RunFolder, message: str):
    from types import SimpleNamespace

    append_event(run, RunFailed(run_id=run.id, message=message))
    run.set_status(FAILED, message)
    return SimpleNamespace(status=FAILED, message=message)


def _resolve(target: str):
    module, _, name = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _config(data: dict):
    from tl_ui.core.config import RunConfig

    try:
        return RunConfig.from_dict(data)
    except Exception:  # a test's fake train function may take any mapping
        return data


def _prepare_spare(target: str) -> None:
    """Before any payload: end with the server, lower the priority, import the train function."""
    parent = os.environ.pop(SPARE_PARENT_ENV, "")
    if parent:
        watch_parent(int(parent))
    try:
        os.nice(int(os.environ.pop(SPARE_NICE_ENV, "0") or 0))
    except (OSError, ValueError):
        pass
    try:
        _resolve(target)
    except Exception:   # e.g. a test's function on a path the payload adds: imported with the payload
        pass
    if target == ENGINE:   # what the engine imports only once a run needs it (1-5 s here): now, while nobody waits
        for name in ENGINE_LAZY_IMPORTS:
            try:
                importlib.import_module(name)
            except Exception:
                pass


def _log_to_run(run_dir: Path) -> None:
    """The spare's output (and any native crash report) into the run's worker.log from now on."""
    try:   # the name process.WORKER_LOG (that module imports this one)
        fd = os.open(run_dir / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main() -> None:
    """The local worker process: payload on stdin; ends at once when the run is recorded (no
    interpreter teardown of torch's threads: the next run starts sooner). A warm worker (WARM_ENV)
    serves payloads line by line until stdin closes (`serve`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spare = os.environ.pop(SPARE_ENV, "")
    warm = os.environ.pop(WARM_ENV, "") == "1"
    if spare:
        _prepare_spare(spare)
    if warm:
        serve(int(os.environ.pop(REPLY_FD_ENV)))
    else:
        payload = json.load(sys.stdin)   # a spare waits here; the server closing the pipe ends it (EOF)
        sys.stdin.close()
        if spare:
            _log_to_run(Path(payload["run_dir"]))
        run_payload(payload)
    _exit(0)


_SERVED = [0]   # runs this warm worker has taken


def serve(reply_fd: int) -> None:
    """A warm worker: one run per line of stdin, one reply line per run on `reply_fd`
    ({"run_id", "status", "warm", "idle_rss_mb", "models"}); returns at EOF or after a run that
    leaves it unfit to serve another."""
    os.write(reply_fd, b'{"ready": true}\n')   # imports done (the executor's `idle_ready`)
    for line in sys.stdin:
        if not line.strip():
            continue
        payload = json.loads(line)
        _log_to_run(Path(payload["run_dir"]))
        _SERVED[0] += 1
        served = _SERVED[0]
        result = run_payload(payload, warm=True)
        state = RunFolder(payload["run_dir"]).state()
        rss_mb = proc_status_kb("VmRSS") / 1024
        warm = state in (FINISHED, STOPPED) and rss_mb <= IDLE_MAX_MB
        models = _models()
        try:
            if state is not RunState.UNKNOWN:
                RunFolder(payload["run_dir"]).set_status(state, result.get("message", ""),   # counts, for tests and logs
                                                         worker_runs=served, model_cache=models)
        except OSError:
            pass
        log.info("run %s %s; this worker served %d run(s), holds %.0f MB resident%s", payload["run_id"], state,
                 served, rss_mb, "" if warm else ": it exits, the next run gets a fresh worker")
        _log_to_devnull()
        reply = {"run_id": payload["run_id"], "status": state, "warm": warm, "idle_rss_mb": round(rss_mb),
                 "models": models}
        os.write(reply_fd, (json.dumps(reply) + "\n").encode("utf-8"))
        if not warm:
            return


def _keep_models() -> None:
    cache = sys.modules.get("tl_ui.engine.models.model_cache")   # imported by the engine (not by tests' stand-ins)
    if cache is not None:
        cache.keep_models(True)


def _models() -> Optional[dict]:
    cache = sys.modules.get("tl_ui.engine.models.model_cache")
    return cache.CACHE.describe() if cache is not None else None


def _torch_threads() -> Optional[int]:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _after_run(watchdog: str, threads: Optional[int]) -> None:
    """Between a warm worker's runs: nothing of the last run's caps, threads or garbage stays."""
    import gc

    lift_memory_cap(watchdog)
    torch = sys.modules.get("torch")
    if torch is not None and threads:
        torch.set_num_threads(threads)
    gc.collect()
    try:   # glibc keeps freed memory in its arenas; give it back while the worker waits
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _log_to_devnull() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _exit(code: int) -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
