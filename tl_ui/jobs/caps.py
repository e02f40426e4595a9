"""What every worker process does first, whatever it serves (a training run, inference requests,
the advisor): take the server's environment and import path, end with the server, lower its
priority, and cap its memory.

The memory cap is the address space the process may add beyond what its loaded libraries already
map (RLIMIT_AS): an allocation past it fails inside the worker (MemoryError, or torch's "can't
allocate memory"), which the worker reports in one plain sentence (tl_ui/jobs/supervisor.py) and
never the server. With CUDA, which reserves huge address ranges, a resident-memory watchdog stands
in: past the cap it calls `on_exceeded` and exits with `MEMORY_EXIT_CODE`.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from tl_ui.jobs.supervisor import MEMORY_EXIT_CODE, ORPHAN_EXIT_CODE

log = logging.getLogger(__name__)

GB = 1024 ** 3
MEMORY_SIGNS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "std::bad_alloc",
                "out of memory", "failed to map segment",
                "could not create a primitive")   # oneDNN when its scratch memory cannot be had (the cap)


def prepare_process(payload: dict) -> None:
    """The server's environment and import path, end with the server, a lower priority than the page
    (`payload`: {"env", "sys_path", "parent_pid", "nice"}, each optional)."""
    os.environ.update(payload.get("env") or {})
    for entry in reversed(payload.get("sys_path") or []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if payload.get("parent_pid"):
        watch_parent(int(payload["parent_pid"]))
    if payload.get("nice"):
        try:
            os.nice(int(payload["nice"]))  # the page's server on the same cores answers first
        except OSError:
            pass


def proc_status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS, VmSize, VmHWM)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _cuda_visible() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_available())
    except Exception:
        return False


def cap_memory(gb: float, on_exceeded: Optional[Callable[[], None]] = None, soft_only: bool = False) -> str:
    """Let this process add at most `gb` GB beyond what is already mapped (libraries, torch, a warm
    worker's kept models). Returns how: "rlimit", "watchdog" (CUDA) or "none" (no /proc, no resource
    module). `soft_only`: leave the hard limit, so that a warm worker can lift the cap after the run
    (`lift_memory_cap`). `on_exceeded`: what the CUDA watchdog does before the process exits."""
    extra = int(gb * GB)
    try:
        import resource

        if _cuda_visible():  # CUDA reserves tens of GB of address space: RLIMIT_AS would break it
            _watch_rss(proc_status_kb("VmRSS") * 1024 + extra, on_exceeded)
            return "watchdog"
        limit = proc_status_kb("VmSize") * 1024 + extra
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard if soft_only else limit))
        return "rlimit"
    except (ImportError, OSError, ValueError):
        log.warning("cannot cap this worker's memory")
        return "none"


def lift_memory_cap(how: str) -> None:
    """Undo `cap_memory(..., soft_only=True)` (a warm worker between runs) and end its watchdog."""
    _GENERATION[0] += 1
    if how == "rlimit":
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (resource.getrlimit(resource.RLIMIT_AS)[1],) * 2)
        except (ImportError, OSError, ValueError):
            pass


_GENERATION = [0]   # a warm worker's run counter: a run's memory watchdog ends with its run


def _watch_rss(limit_bytes: int, on_exceeded: Optional[Callable[[], None]]) -> None:
    generation = _GENERATION[0]

    def watch():
        while _GENERATION[0] == generation:
            time.sleep(0.5)
            try:
                rss = proc_status_kb("VmRSS") * 1024
            except OSError:
                return
            if rss > limit_bytes:
                if on_exceeded is not None:
                    on_exceeded()
                os._exit(MEMORY_EXIT_CODE)

    threading.Thread(target=watch, name="tl-memory-watch", daemon=True).start()


_WATCHED_PARENT: list = []


def watch_parent(parent_pid: int) -> None:
    """A local worker ends with its server: when the server is gone (killed, crashed), so is it."""
    if parent_pid in _WATCHED_PARENT:   # a warm worker's later runs: one watch is enough
        return
    _WATCHED_PARENT.append(parent_pid)

    from tl_ui.jobs.forkserver import FORKSERVER_PID_ENV

    # A forked worker's parent is the server's fork server, which ends when the server does.
    parents = {parent_pid, int(os.environ.get(FORKSERVER_PID_ENV) or parent_pid)}

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() not in parents:
                os._exit(ORPHAN_EXIT_CODE)

    threading.Thread(target=watch, name="tl-parent-watch", daemon=True).start()


def looks_like_memory(message: str, log_file: Optional[Path] = None) -> bool:
    """Whether an error (its message, or the tail of a log) says that memory ran out."""
    text = message or ""
    if log_file is not None:
        try:
            text += Path(log_file).read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            pass
    return any(sign in text for sign in MEMORY_SIGNS)
