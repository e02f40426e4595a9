"""Each run as a Ray task, so that a head node serving the page trains on every worker node.

Connects to `ray_address` ("auto", "ray://host:10001", "host:6379") or, when it is empty, starts
a local Ray (no dashboard, no log forwarding); a Ray already initialised in this process is used
as it is. Each task asks for 1 GPU when the cluster has GPUs, else a few CPUs, and runs in a
fresh Ray worker process (`max_calls=1`: its memory goes back when the run
ends). The runs folder must be the same path on every node (shared storage): the task writes
events.jsonl and status.json there, the server follows them; Stop writes the run's stop file,
then `ray.cancel`s the task after the grace period. A task that dies (Ray's out-of-memory
killer, a lost node) leaves its run failed with a plain message.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Optional

from tl_ui.executors.base import EventFollower, Executor, Handle, StopFile, WorkerResult, worker_env
from tl_ui.executors.worker import ENGINE, make_payload
from tl_ui.core.runfolder import RunFolder

log = logging.getLogger(__name__)

_remote_fn = None


def _ray_train(payload: dict) -> dict:
    from tl_ui.executors.worker import run_payload

    return run_payload(payload)


def _remote():
    global _remote_fn
    if _remote_fn is None:
        import ray

        _remote_fn = ray.remote(max_retries=0, max_calls=1)(_ray_train)
    return _remote_fn


class _RayHandle(Handle):
    def __init__(self, ref, run: RunFolder):
        self.ref, self.run = ref, run
        self.error: Optional[BaseException] = None

    def wait(self, timeout: float) -> bool:
        import ray

        ready, _ = ray.wait([self.ref], timeout=timeout)
        if not ready:
            return False
        try:
            ray.get(self.ref)
        except Exception as exc:  # cancelled, worker died, out of memory, an error in the task
            self.error = exc
        return True

    def started(self) -> bool:
        return "worker_pid" in self.run.status()

    def terminate(self) -> None:
        import ray

        try:
            ray.cancel(self.ref, force=True)   # ends the task's worker process
        except Exception:
            log.exception("ray.cancel failed")


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str = "", *, num_cpus: Optional[int] = None, cpus_per_run: int = 2,
                 target: str = ENGINE, start_now: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.address = (address or "").strip()
        self.num_cpus = num_cpus
        self.cpus_per_run = cpus_per_run
        self.target = target
        self._owns_ray = False
        self._started = False
        self._start_error: Optional[str] = None
        self._lock = threading.Lock()
        if start_now:  # at server start, in the calling (main) thread: a bad address stops the start
            self.start()

    # -- connecting --------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect (or start a local Ray) once. Call it from a thread that lives as long as Ray is
        used: Ray's driver stops working when the thread that called `ray.init` ends."""
        with self._lock:
            if self._started:
                return
            try:
                import ray
            except ImportError:
                raise RuntimeError('The Ray executor (TL_EXECUTOR=ray) needs Ray: pip install -e ".[ray]".') from None

            if not ray.is_initialized():
                if self.address:
                    log.info("connecting to the Ray cluster at %s", self.address)
                    try:
                        ray.init(address=self.address, log_to_driver=False, configure_logging=False)
                    except ConnectionError as exc:
                        raise RuntimeError(f"Cannot reach the Ray cluster at '{self.address}' ({exc}). Start it "
                                           "(ray start --head) or change TL_RAY_ADDRESS.") from None
                else:
                    cpus = self.num_cpus or os.cpu_count() or 1
                    log.info("starting a local Ray with %d CPUs", cpus)
                    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
                self._owns_ray = True
            self._started = True

    def describe(self) -> dict:
        out = {"executor": self.name, "ray_address": self.address or "local"}
        if self._started:
            try:
                import ray

                res = ray.cluster_resources()
                out.update(cpus=res.get("CPU", 0), gpus=res.get("GPU", 0),
                           nodes=sum(1 for n in ray.nodes() if n.get("Alive")))
            except Exception:
                pass
        return out

    def resources(self, job) -> dict:
        """1 GPU when the cluster has GPUs, else the run's threads (or `cpus_per_run`) in CPUs,
        never more than the largest node holds."""
        import ray

        if ray.cluster_resources().get("GPU", 0) >= 1:
            return {"num_gpus": 1, "num_cpus": 1}
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1)
        wanted = getattr(job.config, "num_threads", None) or self.cpus_per_run
        return {"num_cpus": max(1, min(int(wanted), int(largest) or 1))}

    # -- one run -------------------------------------------------------------------------------------
    def run(self, job) -> WorkerResult:
        self.start()
        run = RunFolder(job.run_dir).create()
        stop = StopFile(run.path)
        stop.clear()
        payload = make_payload(job, executor=self.name, target=self.target, env=worker_env(),
                               sys_path=sys.path)  # as spawn does (paths a node lacks are skipped)
        resources = self.resources(job)
        ref = _remote().options(**resources, name=f"tl-run-{job.id}").remote(payload)
        log.info("job %s: Ray task with %s", job.id, resources)
        handle = _RayHandle(ref, run)
        try:
            reason = self.supervise(job, handle, EventFollower(run.events_jsonl), stop)
        finally:
            stop.clear()
        detail = f"{type(handle.error).__name__}: {str(handle.error)[:300]}" if handle.error else ""
        return self.settle(job, reason, detail=detail)

    def release(self) -> None:
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = self._started = False
