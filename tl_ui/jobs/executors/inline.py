"""Runs in a thread of the server's own process: only for an injected train function (the tests'
small stand-ins that exercise the queue). Real runs use a worker process or Ray."""
from __future__ import annotations

from typing import Any, Callable

from tl_ui.jobs.executors.base import Executor, train_options


class InlineExecutor(Executor):
    name = "inline"

    def __init__(self, train_fn: Callable[..., Any], **kwargs):
        super().__init__(**kwargs)
        self.train_fn = train_fn

    def run(self, job) -> Any:
        """The train function's own result; an exception reaches the runner (the job fails cleanly)."""
        return self.train_fn(job.config, job.run_dir, on_event=job.add_event,
                             should_stop=job.stop_flag.is_set, dataset=job.dataset,
                             **train_options(self.train_fn, job))
