"""The one supervisor: every worker subprocess of the app (a training run's, the inference worker,
a long inference request such as the model advisor) is started, watched, stopped and reaped here,
and every way such a worker can end is said in one plain sentence here.

* `WorkerProcess.start(kind, module)`: a fresh interpreter running `module.main()` (no fork of the
  server, no re-import of its `__main__`; on a machine without a GPU, a fork of the fork server that
  has imported torch and the engine once, made to look like that fresh interpreter:
  tl_ui/jobs/forkserver.py), in its own session (Ctrl+C reaches the server, which
  stops its workers itself), stdin a pipe, and optionally a second pipe the worker answers on with
  one JSON object per line (its stdout stays free for libraries' prints). Its death is EOF on that
  pipe. `stop()` closes its stdin, waits, terminates, kills, and always reaps.
* `watch(handle, ...)`: the loop every supervised thing goes through, whatever it is (a worker
  process, a Ray task, one request inside the inference worker): follow it, and once there is a
  reason to stop it (the person's Stop, the wall-clock cap, the server's shutdown) ask it to stop,
  terminate it after a grace period, kill it after a little more.
* `Ending` and `ended_message(kind, ending, ...)`: "ran out of memory", "took too long",
  "crashed" — the same three sentences' shape for training, inference and the advisor.

No torch, no ray here: the web process imports this.
"""
from __future__ import annotations

import enum
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from typing import Callable, Optional

log = logging.getLogger(__name__)

# A worker's own memory watchdog (tl_ui/jobs/caps.py, used where RLIMIT_AS cannot be: CUDA) exits with this code.
MEMORY_EXIT_CODE = 3
# A worker whose server is gone ends itself with this code (tl_ui/jobs/caps.py).
ORPHAN_EXIT_CODE = 4


# -- how a worker ended, in words -------------------------------------------------------------------
class Ending(str, enum.Enum):
    MEMORY = "memory"        # ran out of memory (its cap, or the system's)
    TIME = "time"            # reached its wall-clock cap and was stopped
    CRASHED = "crashed"      # died without saying why (killed, a native crash)
    STOPPED = "stopped"      # the person asked it to stop
    SHUTDOWN = "shutdown"    # the server is shutting down


# Each kind of worker: what it is called, and where its caps are set.
_WORDS = {
    "training": {
        Ending.MEMORY: "The training process ran out of memory (each run may use {gb:g} GB here, setting "
                       "TL_JOB_MEMORY_GB). Try a smaller batch or image size.",
        Ending.TIME: "The run reached the time limit of {minutes:g} minutes per run (setting TL_JOB_MAX_MINUTES) and "
                     "was stopped; no model was saved. Try fewer epochs, fewer examples or a smaller model.",
        Ending.CRASHED: "The training process ended unexpectedly (it ran out of memory or was stopped by the system). "
                        "Try a smaller batch or image size.",
    },
    "inference": {
        Ending.MEMORY: "The model server ran out of memory while answering (it may use {gb:g} GB here, setting "
                       "TL_INFERENCE_MEMORY_GB). Try a smaller image or a shorter text, or ask whoever runs "
                       "Transfer Lab to raise the limit.",
        Ending.TIME: "Answering took longer than {seconds:g} seconds (the limit per request, setting "
                     "TL_INFERENCE_MAX_SECONDS) and was stopped. Try again in a moment.",
        Ending.CRASHED: "The model server stopped unexpectedly while answering (it ran out of memory or was stopped "
                        "by the system). Try again: a fresh one starts with your next click.",
        Ending.STOPPED: "Stopped: no answer was computed.",
        Ending.SHUTDOWN: "The server is shutting down; no answer was computed.",
    },
    "advisor": {
        Ending.MEMORY: "Ranking the models ran out of memory (it may use {gb:g} GB here, setting TL_JOB_MEMORY_GB). "
                       "Try again with fewer examples.",
        Ending.TIME: "Ranking the models took longer than {minutes:g} minutes (setting TL_JOB_MAX_MINUTES) and was "
                     "stopped.",
        Ending.CRASHED: "Ranking the models stopped unexpectedly (it may have run out of memory). Try again with fewer "
                        "examples.",
        Ending.STOPPED: "Stopped: the models were not ranked.",
        Ending.SHUTDOWN: "The server is shutting down; the models were not ranked.",
    },
}


def ended_message(kind: str, ending: Ending, *, gb: float = 0.0, minutes: float = 0.0, seconds: float = 0.0) -> str:
    """The one sentence a person reads when a `kind` worker ("training", "inference", "advisor") ended so."""
    return _WORDS[kind][Ending(ending)].format(gb=gb, minutes=minutes, seconds=seconds)


def ending_of(returncode: Optional[int], asked: Optional[str] = None) -> Ending:
    """How a worker ended, from why it was asked to stop (if it was) and its exit code."""
    if asked in ("time", "stop", "shutdown"):
        return {"time": Ending.TIME, "stop": Ending.STOPPED, "shutdown": Ending.SHUTDOWN}[asked]
    if returncode == MEMORY_EXIT_CODE:
        return Ending.MEMORY
    return Ending.CRASHED


# -- handles: anything the watch loop can follow and end ---------------------------------------------
class Handle:
    """A started thing, as `watch` sees it."""

    def wait(self, timeout: float) -> bool:
        """True once it has ended (waits up to `timeout` s)."""
        raise NotImplementedError

    def started(self) -> bool:
        """False while it has not begun (a Ray task waiting for a node): Stop ends it at once."""
        return True

    def terminate(self) -> None:
        """Ask the operating system (or Ray) to end it."""

    def kill(self) -> None:
        """End it for sure."""


def watch(handle: Handle, *, stop_reason: Callable[[], Optional[str]], ask_stop: Callable[[str], None],
          tick: Callable[[], None] = lambda: None, deadline_s: Optional[float] = None,
          grace_s: Callable[[str], float] = lambda reason: 30.0, kill_after_s: float = 5.0, poll_s: float = 0.2,
          idle: Optional[Callable[[float], object]] = None) -> Optional[str]:
    """Follow `handle` until it ends. `tick` runs every round (e.g. to read new events). Once
    `stop_reason()` gives a reason ("stop", "shutdown") or `deadline_s` has passed ("time"), ask it to
    stop (`ask_stop(reason)`), terminate it after `grace_s(reason)` seconds, kill it `kill_after_s`
    later. `idle(poll_s)` is how a round waits (default: on the handle itself). Returns the reason
    it was asked to stop, or None when it ended by itself."""
    started = time.monotonic()
    deadline = started + deadline_s if deadline_s else None
    reason: Optional[str] = None
    asked = terminated = killed = None
    while True:
        tick()
        if handle.wait(0 if reason is None else poll_s):
            break
        now = time.monotonic()
        if reason is None:
            reason = stop_reason() or ("time" if deadline is not None and now >= deadline else None)
            if reason is None:
                (idle or handle.wait)(poll_s)
                continue
            log.info("asking a worker to stop (%s)", reason)
            ask_stop(reason)
            asked = now
        grace = grace_s(reason)
        if terminated is None and (now - asked >= grace or not handle.started()):
            if handle.started():
                log.warning("a worker did not stop within %g s: terminating it", grace)
            handle.terminate()
            terminated = now
        elif terminated is not None and killed is None and now - terminated >= kill_after_s:
            log.warning("a worker did not end after terminate: killing it")
            handle.kill()
            killed = now
    tick()
    return reason


# -- worker processes ----------------------------------------------------------------------------------
def worker_command(module: str) -> list[str]:
    """A fresh interpreter running `module.main()`."""
    return [sys.executable, "-c", f"from {module} import main; main()"]


def _output_fd(stdout) -> int:
    """The descriptor a worker's output goes to: `stdout` as `WorkerProcess.start` takes it."""
    if stdout is None:
        return sys.stderr.fileno()
    if stdout == subprocess.DEVNULL:
        return _devnull()
    return stdout if isinstance(stdout, int) else stdout.fileno()


_DEVNULL_FD: list = []


def _devnull() -> int:
    if not _DEVNULL_FD:
        _DEVNULL_FD.append(os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC))
    return _DEVNULL_FD[0]


class WorkerProcess(Handle):
    """One worker subprocess of kind "training", "inference" or "advisor"; see the module's note."""

    started_count = 0    # processes started by this server (tests and benchmarks read it)

    def __init__(self, kind: str, proc: subprocess.Popen, replies: int = -1):
        self.kind, self.proc, self.replies = kind, proc, replies
        self._buffer = b""
        self._eof = replies < 0
        self._send_lock = threading.Lock()
        # The reply pipe's descriptor is read by one thread (a pool's reader) and may be closed by another
        # (`stop()`); once closed, its number is the next pipe's. Reads and the close hold this lock, and a
        # read checks that the descriptor is still this worker's: a stale one would read, or close, another
        # worker's pipe (a new worker's "ready" taken by the old reader, its pipe closed under it).
        self._pipe_lock = threading.Lock()

    @classmethod
    def start(cls, kind: str, module: str, *, env: Optional[dict] = None, stdout=subprocess.DEVNULL,
              replies: bool = False) -> "WorkerProcess":
        """Start `module.main()` in a fresh process (a fork of this process's fork server where there is one,
        tl_ui/jobs/forkserver.py; a new interpreter otherwise). `env`: added to this process's environment
        (the name of the reply pipe's descriptor is added as TL_WORKER_REPLY_FD). `stdout`: where
        its output goes (a file, DEVNULL, or None: this process's stderr)."""
        from tl_ui.jobs import forkserver

        base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        base_env.setdefault("MALLOC_ARENA_MAX", "2")   # fewer 64 MB malloc arenas: less address space per thread
        own_env = dict(env or {})
        read_fd = write_fd = -1
        if replies:
            read_fd, write_fd = os.pipe()
            own_env[REPLY_FD_ENV] = str(write_fd)
        try:
            proc = forkserver.spawn(module, base_env, own_env, _output_fd(stdout), write_fd)
            if proc is None:   # no fork server here (or it does not fit): a fresh interpreter
                proc = subprocess.Popen(worker_command(module), stdin=subprocess.PIPE,
                                        stdout=sys.stderr.fileno() if stdout is None else stdout,
                                        stderr=subprocess.STDOUT, env={**base_env, **own_env}, close_fds=True,
                                        pass_fds=(write_fd,) if replies else (), start_new_session=True)
        except BaseException:
            if replies:
                os.close(read_fd)
            raise
        finally:
            if replies:
                os.close(write_fd)   # the worker holds the only writing end: its death is EOF here
        WorkerProcess.started_count += 1
        log.info("started %s worker process %d", kind, proc.pid)
        return cls(kind, proc, read_fd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll()

    def alive(self) -> bool:
        return self.proc.poll() is None

    # -- Handle ----------------------------------------------------------------------------------
    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout if timeout > 0 else 0.0001)
        except subprocess.TimeoutExpired:
            return False
        return True

    def terminate(self) -> None:
        if self.alive():
            self.proc.terminate()

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()

    # -- talking to it ---------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        """One JSON line on its stdin (raises BrokenPipeError / OSError when it is gone)."""
        data = (json.dumps(message) + "\n").encode("utf-8")
        with self._send_lock:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except ValueError:   # its stdin was closed here: it is being stopped
                raise BrokenPipeError("the worker's input is closed") from None

    def send_all(self, data: bytes) -> None:
        """Write `data` and close its stdin (a one-payload worker); a worker already gone is left to `watch`."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def close_input(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    @property
    def at_eof(self) -> bool:
        return self._eof and b"\n" not in self._buffer

    def read_reply(self, timeout: Optional[float]) -> Optional[dict]:
        """The next JSON object it sent on its reply pipe, waiting up to `timeout` s (None: until one
        comes or the pipe ends); None when none came in time or it is gone (`at_eof`). Lines that are
        no JSON object are skipped."""
        end = None if timeout is None else time.monotonic() + max(timeout, 0)
        while True:
            while b"\n" not in self._buffer and not self._eof:
                left = None if end is None else max(end - time.monotonic(), 0)
                fd = self.replies
                try:   # in slices: a pipe closed meanwhile (`stop()`) is noticed within one
                    ready, _, _ = select.select([fd], [], [], READ_SLICE_S if left is None else min(left, READ_SLICE_S))
                except (OSError, ValueError):
                    ready = [fd]   # closed: the read below says so
                if not ready:
                    if left is not None and left <= READ_SLICE_S:
                        return None
                    continue
                with self._pipe_lock:
                    if fd < 0 or self.replies != fd:   # `stop()` closed it under this reader: its end
                        chunk = b""
                    else:
                        try:
                            chunk = os.read(fd, 65536)
                        except OSError:
                            chunk = b""
                self._eof = not chunk
                self._buffer += chunk
            if b"\n" not in self._buffer:
                return None
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                return message

    # -- ending it ------------------------------------------------------------------------------------
    def stop(self, grace_s: float = 5.0, kill_after_s: float = 5.0) -> Optional[int]:
        """Close its stdin (a serving worker exits at EOF), terminate it after `grace_s`, kill it
        `kill_after_s` later; reap it and close the reply pipe. Returns its exit code."""
        self.close_input()
        for step, wait_s in ((None, grace_s), (self.proc.terminate, kill_after_s), (self.proc.kill, 10.0)):
            if step is not None and self.alive():
                step()
            try:
                self.proc.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        self.close_pipe()
        return self.proc.poll()

    def reap(self) -> Optional[int]:
        """After it has ended (or been killed): collect its exit status, close the pipe."""
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.close_input()
        self.close_pipe()
        return code

    def close_pipe(self) -> None:
        with self._pipe_lock:   # closed once, by whichever thread comes first (see __init__)
            fd, self.replies = self.replies, -1
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._eof = True


REPLY_FD_ENV = "TL_WORKER_REPLY_FD"
READ_SLICE_S = 1.0   # how long a reader waits on the reply pipe before it looks whether the pipe was closed


def reply_writer(default: Optional[Callable] = None) -> Callable[[dict], None]:
    """In a worker: a function that sends one JSON object on the reply pipe the supervisor opened
    (thread-safe; a reply to a server that is gone is dropped). `default`: json.dumps' own."""
    fd = int(os.environ.pop(REPLY_FD_ENV))
    lock = threading.Lock()

    def send(message: dict) -> None:
        data = (json.dumps(message, default=default) + "\n").encode("utf-8")
        with lock:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except OSError:
                pass

    return send
