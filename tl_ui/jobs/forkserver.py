"""Workers that start in hundredths of a second: a fork server that has imported torch and the engine once.

A fresh worker interpreter spends 4-6 CPU-seconds importing torch, timm, transformers, scikit-learn and
the engine before it does anything (docs/benchmarks.md, "Worker start"). The fork server is one such
interpreter, started by the web process the first time it needs a worker; every later worker of that
process is a fork of it, with nothing re-imported. Each fork is made to look like the fresh interpreter
`WorkerProcess.start` would have started: its own session, the requested environment (exactly: see
below), working folder, stdin, output and reply pipe, `module.main()` run as `python -c` runs it.

When it is not used (the worker starts as a fresh interpreter, as before):
* a GPU is present (/dev/nvidia*, /dev/kfd): CUDA does not survive a fork, and importing the engine
  may have touched it;
* TL_FORKSERVER=0, no fork on this platform, or the fork server failed to start or died.

Libraries read some environment variables once, at import (thread counts, offline flags): a fork
server serves only requests whose environment is the one it started with (apart from the worker's own
variables, PYTEST_CURRENT_TEST, and the defaults its imports set where the request lacks them). When
the web process's environment changes, a new fork server is started for it; the old one forks no more
and ends after the last worker it forked.

Protocol (a SOCK_SEQPACKET socket pair, one JSON message per packet): the fork server says
{"ready": true, "env"} once it has imported (its environment then); the web process asks {"id", "module",
"env", "cwd"}
with the child's stdin, output and (optionally) reply pipe as passed descriptors; the fork server
answers {"id", "pid"}, and {"exited": pid, "code": c} when a child ends (`c` as Popen's returncode).
The fork server ends with its web process: the socket's end (not PR_SET_PDEATHSIG, which fires when the
*thread* that started it ends); its children end with it (tl_ui/jobs/caps.py, `watch_parent`, through
FORKSERVER_PID_ENV).

No torch here on the web process's side: only `serve` (in the fork server) imports the engine.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

ENABLE_ENV = "TL_FORKSERVER"
SOCKET_FD_ENV = "TL_FORKSERVER_FD"
FORKSERVER_PID_ENV = "TL_FORKSERVER_PID"   # set in each forked worker: its parent, which ends with the server
# What the fork server imports once (the training worker's and the inference worker's heavy imports).
PRELOAD = ("tl_ui.jobs.executors.worker", "tl_ui.jobs.inference.worker", "tl_ui.engine", "torch", "timm",
           "timm.data", "transformers", "accelerate", "sklearn.linear_model", "sklearn.model_selection",
           "scipy.optimize", "safetensors.torch", "tl_ui.engine.inference.predict",
           "tl_ui.engine.inference.familiarity", "tl_ui.trust", "pytorch_grad_cam", "captum.attr")
# Environment variables that differ between otherwise identical requests and that nothing reads at import.
IGNORED_ENV = ("PYTEST_CURRENT_TEST", ENABLE_ENV)
READY_TIMEOUT_S = 120.0
GPU_DEVICES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")
MAX_PACKET = 1 << 20


def wanted() -> bool:
    """Whether workers should be forks of a fork server on this machine, now."""
    if os.environ.get(ENABLE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return False
    return not any(Path(device).exists() for device in GPU_DEVICES)


def _comparable(env: dict) -> dict:
    return {k: v for k, v in env.items() if k not in IGNORED_ENV}


class ForkedProcess:
    """A worker forked by the fork server, with the part of `subprocess.Popen` that the supervisor uses."""

    def __init__(self, server: "ForkServer", pid: int, stdin_fd: int):
        self._server = server   # kept alive while its worker lives (a retired one ends after its last worker)
        self.pid = pid
        self.stdin = os.fdopen(stdin_fd, "wb")
        self.returncode: Optional[int] = None
        self._ended = threading.Event()

    def _set_ended(self, code: Optional[int]) -> None:
        self.returncode = code
        self._ended.set()

    def poll(self) -> Optional[int]:
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(["forked worker", str(self.pid)], timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        # Until the fork server says it ended, its pid is its own (at worst a zombie not yet reaped); the
        # moment between the fork server's waitpid and its message arriving here is the only gap.
        if not self._ended.is_set():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The web process's side: start the fork server, ask it for workers, learn how they ended."""

    def __init__(self, env: dict):
        self.env = dict(env)          # the environment it started with
        self.env_after = dict(env)    # and after its imports (some set defaults: tl_ui.engine, torch)
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        child_env = {**self.env, SOCKET_FD_ENV: str(theirs.fileno())}
        try:   # its own output (its imports' warnings) is nobody's: each worker's output is its own
            self.proc = subprocess.Popen([sys.executable, "-c", "from tl_ui.jobs.forkserver import serve; serve()"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT, env=child_env,
                                         pass_fds=(theirs.fileno(),), close_fds=True, start_new_session=True)
        finally:
            theirs.close()
        self._lock = threading.Lock()          # one request at a time on the socket
        self._state = threading.Condition()
        self._ready = False
        self._gone = False
        self._retired = False                  # replaced: it serves no new worker and ends after its last one
        self._answers: dict[int, Optional[int]] = {}   # request id -> pid (None: it could not fork)
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}  # a child that ended before its ForkedProcess was made
        self._next_id = 0
        threading.Thread(target=self._read, name="tl-forkserver-replies", daemon=True).start()

    # -- its messages ---------------------------------------------------------------------------------------
    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(MAX_PACKET)
            except OSError:
                data = b""
            if not data:
                break
            try:
                message = json.loads(data)
            except ValueError:
                continue
            with self._state:
                if message.get("ready"):
                    self.env_after = dict(message.get("env") or self.env)
                    self._ready = True
                elif "exited" in message:
                    pid, code = int(message["exited"]), message.get("code")
                    child = self._children.pop(pid, None)
                    if child is None:
                        self._early_exits[pid] = code
                    else:
                        child._set_ended(code)
                    self._close_if_done()   # a retired one whose last worker ended goes
                elif "id" in message:   # pid None: it could not fork
                    self._answers[int(message["id"])] = message.get("pid")
                self._state.notify_all()
        with self._state:   # it is gone: its children end with it (watch_parent); nobody can report their end
            self._gone = True
            for child in self._children.values():
                child.kill()
                child._set_ended(-signal.SIGKILL)
            self._children.clear()
            self._state.notify_all()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def usable(self) -> bool:
        return not self._gone and self.proc.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        with self._state:
            self._state.wait_for(lambda: self._ready or self._gone, timeout)
            return self._ready and not self._gone

    def _set_by_imports(self) -> dict:
        start, after = _comparable(self.env), _comparable(self.env_after)
        return {k: v for k, v in after.items() if start.get(k) != v}

    def differences(self, env: dict) -> list[str]:
        """The variables in which `env` differs from the fork server's. One its imports set (OpenCV prepends to
        LD_LIBRARY_PATH; the engine sets defaults) fits when `env` has the value it started with (a fresh
        interpreter's same imports would set it alike) or the value they set."""
        start, wanted_env, by_imports = _comparable(self.env), _comparable(env), self._set_by_imports()
        out = []
        for key in start.keys() | wanted_env.keys() | by_imports.keys():
            fitting = (start.get(key), by_imports[key]) if key in by_imports else (start.get(key),)
            if wanted_env.get(key) not in fitting:
                out.append(key)
        return sorted(out)

    def child_env(self, base_env: dict, worker_env: dict) -> dict:
        """A worker's environment: what a fresh interpreter given `base_env` + `worker_env` would hold once it
        has imported what the fork server imported."""
        start = _comparable(self.env)
        env = {**base_env, **worker_env}
        for key, value in self._set_by_imports().items():
            if base_env.get(key) == start.get(key):
                env[key] = value
        return env

    # -- a worker -----------------------------------------------------------------------------------------
    def spawn(self, module: str, base_env: dict, worker_env: dict, stdout_fd: int,
              reply_fd: int = -1) -> Optional[ForkedProcess]:
        """A fork running `module.main()` with `base_env` plus `worker_env`; None when the fork server cannot
        make one or `base_env` does not fit it (the caller starts a fresh interpreter instead). The
        descriptors stay the caller's to close."""
        if not self.wait_ready():
            return None
        differences = self.differences(base_env)
        if differences:
            log.info("a worker's environment differs from the fork server's (%s): it starts as a fresh interpreter",
                     ", ".join(differences))   # names only: values may be secrets
            return None
        env = self.child_env(base_env, worker_env)
        stdin_read, stdin_write = os.pipe()
        fds = [stdin_read, stdout_fd] + ([reply_fd] if reply_fd >= 0 else [])
        try:
            with self._lock:
                self._next_id += 1
                request = {"id": self._next_id, "module": module, "env": env, "cwd": os.getcwd()}
                try:
                    socket.send_fds(self._sock, [json.dumps(request).encode("utf-8")], fds)
                except OSError:
                    os.close(stdin_write)
                    return None
                finally:
                    os.close(stdin_read)
                with self._state:
                    self._state.wait_for(lambda: request["id"] in self._answers or self._gone, 30)
                    pid = self._answers.pop(request["id"], None)   # None: no answer, or it could not fork
                    if pid is None:
                        os.close(stdin_write)
                        return None
                    child = ForkedProcess(self, pid, stdin_write)
                    if pid in self._early_exits:
                        child._set_ended(self._early_exits.pop(pid))
                    else:
                        self._children[pid] = child
            return child
        finally:   # retired while this request was in flight (another thread's environment changed)
            self._close_if_done()

    def retire(self) -> None:
        """No new workers from it; it ends once the ones it forked have ended (they end with it)."""
        with self._state:
            self._retired = True
        self._close_if_done()

    def _close_if_done(self) -> None:
        """A retired fork server ends once no worker of its own lives and none is being forked: a fork in
        flight keeps it (its answer, and the worker, would otherwise be lost with the socket)."""
        with self._state:   # a re-entrant lock: `_read` calls this holding it
            done = self._retired and not self._children and not self._lock.locked()
        if done:
            self.close()

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


_shared: Optional[ForkServer] = None
_shared_lock = threading.Lock()


def spawn(module: str, base_env: dict, worker_env: dict, stdout_fd: int, reply_fd: int = -1) -> Optional[ForkedProcess]:
    """A worker forked from this process's fork server (started now if there is none, and waited for while
    it imports): `module.main()` with the environment `base_env` plus `worker_env` (the worker's own
    variables). None where the fork server is not wanted, does not fit `base_env`, or could not make one:
    the caller starts a fresh interpreter instead."""
    global _shared
    if not wanted():
        return None
    with _shared_lock:
        if _shared is None or not _shared.usable():
            _shared = ForkServer(base_env)
        server = _shared
    differences = server.differences(base_env) if server.wait_ready() else []
    if differences:   # the environment changed since it started: a new one for it (this worker waits for it)
        log.info("the environment changed since the fork server started (%s): starting another for it",
                 ", ".join(differences))   # names only: values may be secrets
        with _shared_lock:
            if _shared is server:
                server.retire()
                _shared = ForkServer(base_env)
            server = _shared
    return server.spawn(module, base_env, worker_env, stdout_fd, reply_fd)


# -- the fork server itself ---------------------------------------------------------------------------------
def serve() -> None:
    """Import the engine once, then fork a worker per request until the web process is gone."""
    import importlib
    import select

    sock = socket.socket(fileno=int(os.environ.pop(SOCKET_FD_ENV)))
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:   # an optional extra; the worker imports (and reports) what it lacks itself
            pass
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    sock.send(json.dumps({"ready": True, "env": dict(os.environ)}).encode("utf-8"))
    while True:
        try:
            readable, _, _ = select.select([sock, wake_read], [], [])
        except InterruptedError:
            continue
        if wake_read in readable:
            os.read(wake_read, 4096)
            _report_ended(sock)
        if sock in readable:
            try:
                data, fds, _, _ = socket.recv_fds(sock, MAX_PACKET, 3)
            except OSError:
                data, fds = b"", []
            if not data:
                os._exit(0)
            request = json.loads(data)
            try:
                pid = os.fork()
            except OSError:   # no fork now (memory, process limit): this worker starts as a fresh interpreter,
                pid = None    # and the workers already forked go on (the fork server must not end with them)
            if pid == 0:
                sock.close()
                for fd in (wake_read, wake_write):
                    os.close(fd)
                _become_worker(request, fds)
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"id": request["id"], "pid": pid}).encode("utf-8"))
            _report_ended(sock)


def _report_ended(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode("utf-8"))


def _become_worker(request: dict, fds: list) -> None:
    """In the fork: what `python -c "from module import main; main()"` would be, then exit."""
    import atexit
    import importlib
    import io
    import traceback

    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        stdin_fd, out_fd = fds[0], fds[1]
        os.dup2(stdin_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(stdin_fd)
        os.close(out_fd)
        env = dict(request["env"])
        if len(fds) > 2:
            env["TL_WORKER_REPLY_FD"] = str(fds[2])   # tl_ui.jobs.supervisor.REPLY_FD_ENV
        env[FORKSERVER_PID_ENV] = str(os.getppid())
        os.environ.clear()
        os.environ.update(env)
        os.chdir(request["cwd"])
        sys.argv = ["-c"]
        # the streams of `python -c` with PYTHONUNBUFFERED=1 (which WorkerProcess.start sets)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=sys.stdout.encoding,
                                      line_buffering=True, write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=sys.stderr.encoding,
                                      errors="backslashreplace", line_buffering=True, write_through=True)
        if "numpy" in sys.modules:   # a fresh interpreter's global NumPy generator is seeded afresh (Python's own
            sys.modules["numpy"].random.seed()   # `random` is, at fork, by the standard library)
        try:
            importlib.import_module(request["module"]).main()
            code = 0
        except SystemExit as exit_:
            if exit_.code is None:
                code = 0
            elif isinstance(exit_.code, int):
                code = exit_.code
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        os._exit(code)
