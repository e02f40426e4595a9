"""The advisor verb: rank the offline models for a loaded dataset, in a worker process.

The page, the API and the CLI call `Advisor.advise`; the models run in an inference worker of its
own (`InferencePool.call_long`, tl_ui/jobs/inference: the verb "advise"), started, watched, stopped
and reaped by the one supervisor like every other worker: torch never enters the web process, its
progress streams back, Stop cancels it, and a crash, the memory cap (TL_JOB_MEMORY_GB) or the time
cap (TL_JOB_MAX_MINUTES) costs this answer only, said in one sentence. At most `settings.max_jobs`
advisors run at once; the embeddings they compute land in the owner's embedding cache, where the
next linear-probe run of the same model finds them.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Optional

from tl_ui.core.config import ConfigError, RunConfig
from tl_ui.jobs.inference import InferenceError
from tl_ui.service.errors import NO_DATA_MESSAGE, UserError

log = logging.getLogger(__name__)

BUSY_WAIT_S = 5.0
BUSY_MESSAGE = "The model advisor is busy with another dataset. Try again in a minute."


class Advisor:
    def __init__(self, settings, inference):
        self.settings = settings
        self.inference = inference     # tl_ui.jobs.inference.InferencePool

    def advise(self, dataset, options: Optional[dict] = None, *, embedding_cache: Optional[dict] = None,
               on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
               should_stop: Callable[[], bool] = lambda: False, owner: str = "-advisor") -> list[dict]:
        """The ranked rows (tl_ui.engine.advisor.ranking.advise). Raises UserError with a plain message."""
        return self.advise_and_map(dataset, options, embedding_cache=embedding_cache, on_progress=on_progress,
                                   should_stop=should_stop, owner=owner)[0]

    def advise_and_map(self, dataset, options: Optional[dict] = None, *, embedding_cache: Optional[dict] = None,
                       on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
                       should_stop: Callable[[], bool] = lambda: False,
                       owner: str = "-advisor") -> tuple[list[dict], Optional[dict]]:
        """(the ranked rows, the data map in the best model's embeddings or None)."""
        if dataset is None:
            raise UserError(NO_DATA_MESSAGE)
        if getattr(dataset, "multilabel", False):   # its ranking scores one label per example
            raise UserError("The model advisor ranks models for data with one label per example. For multi-label "
                            "data, train a linear probe in step 4 (seconds) with each model you want to compare.")
        try:
            config = self.settings.run_limits().check(
                RunConfig.from_options({**(options or {}), "strategy": "linear_probe"}, modality=dataset.modality))
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        config.limits = {**config.limits, **self.settings.limits_record()}
        args = {"dataset": dataclasses.asdict(dataset), "config": config.to_dict(),
                "embedding_cache": embedding_cache, "max_examples": self.settings.advisor_max_examples}
        try:
            answer = self.inference.call_long(owner, "advise", args, kind="advisor", busy_message=BUSY_MESSAGE,
                                              busy_wait_s=BUSY_WAIT_S, on_progress=on_progress,
                                              should_stop=should_stop)
        except InferenceError as exc:
            raise UserError(str(exc)) from None
        return list(answer.get("rows") or []), answer.get("map")
