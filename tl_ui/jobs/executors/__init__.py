"""Where a run trains. The runner (tl_ui/jobs/runner.py) owns the queue; an executor runs one job:

* `ProcessExecutor` ("process", the default): a worker process per run on this machine, with a
  memory cap and a wall-clock cap; a worker that dies fails its run, never the server.
* `RayExecutor` ("ray"): a Ray task per run on a cluster (or a local Ray).
* `InlineExecutor` ("inline"): a thread of the server, only for an injected train function (tests).

Importing this package imports neither torch nor ray.
"""
from __future__ import annotations

from tl_ui.jobs.executors.base import (UNEXPECTED_END, Executor, StopFile, WorkerResult, memory_message,
                                  time_limit_message)
from tl_ui.jobs.executors.inline import InlineExecutor
from tl_ui.jobs.executors.process import ProcessExecutor

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor", "RayExecutor", "StopFile", "UNEXPECTED_END",
           "WorkerResult", "make_executor", "memory_message", "time_limit_message"]


def __getattr__(name):
    if name == "RayExecutor":
        from tl_ui.jobs.executors.ray_tasks import RayExecutor

        return RayExecutor
    raise AttributeError(f"module 'tl_ui.jobs.executors' has no attribute {name!r}")


def make_executor(settings, **kwargs) -> Executor:
    """The executor `settings.executor` names, with the settings' memory and time caps."""
    caps = {"memory_gb": settings.job_memory_gb, "max_minutes": settings.job_max_minutes, **kwargs}
    if settings.executor == "ray":
        from tl_ui.jobs.executors.ray_tasks import RayExecutor

        caps.pop("memory_gb")  # Ray's own memory monitor guards its nodes (see ray_tasks.py)
        return RayExecutor(settings.ray_address, **caps)
    return ProcessExecutor(spare=getattr(settings, "spare_worker", True), nice=getattr(settings, "worker_nice", 5),
                           **caps)
