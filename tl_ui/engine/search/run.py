"""Strategy `auto`: try the strategies that apply to the data, each with a few settings, within a time budget;
keep the best on the validation (choose) examples; train it again as the run's model and report it once on the
test examples (the ordinary end of a run: intervals, calibration, prediction sets, export).

* **One try at a time, in this process** (the warm worker, its torch and its embedding cache): the probe's
  embeddings are computed once and every later probe, and the winner's refit, read them back. With
  TL_EXECUTOR=ray the search is still one job (the caps count it once) whose tries run one after another
  inside its task: a try is seconds to minutes on these CPUs, and parallel tries would each load the backbone
  and compete for the same cores.
* **Optuna orders and prunes**: a TPESampler seeded with the run's seed over a define-by-run space (strategy,
  then its settings: tl_ui/engine/planning/search_plan.py); the first tries are enqueued cheapest first (the
  probe, then each strategy's shortest setting); a MedianPruner stops a fine-tuning try whose validation
  accuracy after an epoch is below the median of the earlier tries' at that epoch.
* **The budget is a hard limit**: a try starts only when it and the winner's refit fit in the time left by the
  planning estimates, and a running try is stopped once they no longer would. One exception: until a try
  has finished there is no answer at all, so the first try (the probe, seconds on an idle machine) runs to
  the budget's end and the winner's refit runs past it.
* **No peeking**: a try's TrainingRun has no test examples at all (`trial=True`); the winner, the margin and
  the sentence come from the choose examples (tl_ui/engine/evaluation/selection.py).
* **Exact replay**: run.json records the tries (strategy, settings, outcome). A replay of it (`train --config
  run.json`) makes the same tries in the same order with no clock and no sampler: each try that finished is
  trained again (same seed, same split: the same validation predictions), each that was cut short (pruned,
  stopped or skipped for the budget) keeps its recorded outcome, so the same winner is chosen from the same
  scores. A search's time-dependent decisions cannot be repeated by re-timing them; they are repeated by record.
* **Refit, not kept**: the winner is trained again (same seed, same split) as the run's model, through the
  ordinary path that writes metrics.json and the export. Keeping every try's weights would hold several
  models in memory and need the end of a run for a model trained elsewhere; the refit of the probe reads its
  embeddings back from the cache (seconds), and the budget reserves the refit's time for the others.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from tl_ui.contracts import RunState
from tl_ui.contracts.events import EpochEnd, RunStopped, SearchTrial
from tl_ui.core.catalog import ModelUnavailable
from tl_ui.core.config import ConfigError, RunConfig
from tl_ui.data import DataError, LabelledDataset, stratified_subset
from tl_ui.engine.evaluation.roles import split_roles
from tl_ui.engine.evaluation.selection import Tried, select, val_score
from tl_ui.engine.planning.estimate import estimate_seconds
from tl_ui.engine.planning.search_plan import (MAX_TRIALS, PRUNER, SAMPLER, Candidate, candidate_from_params,
                                               candidates, first_tries, fits, new_study, over_budget, params_for,
                                               refit_share)
from tl_ui.engine.probe.embedding_cache import EmbeddingCache
from tl_ui.engine.probe.features import Stopped
from tl_ui.engine.training import loop
from tl_ui.engine.training.recorder import EventRecorder, RunResult, fail_run

log = logging.getLogger(__name__)
FINE_TUNING = ("partial", "full", "lora")   # their epochs are reported to the pruner
CUT_SHORT = ("pruned", "stopped")            # a try's states when it was ended early (search.trials[].state)
TRAINED_AGAIN = ("complete", "failed")       # a replay trains these tries again; it keeps the others' outcomes


def train_run(config: RunConfig, run_dir, **kwargs) -> RunResult:
    """The engine's entry (`tl_ui.engine.train_run`): the training loop's `train_run`, with the search for
    an `auto` config."""
    return loop.train_run(config, run_dir, execute=search_run, **kwargs)


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:g}-minute" if minutes == int(minutes) else f"{minutes:.2g}-minute"


def search_run(config: RunConfig, run_dir: Path, dataset: LabelledDataset, recorder: EventRecorder,
               should_stop: Callable[[], bool], cache=None) -> RunResult:
    if getattr(dataset, "multilabel", False):
        raise ConfigError("'auto' chooses by validation accuracy, which needs one label per example; for "
                          "multi-label data pick a strategy (LoRA or the probe).")
    if config.max_examples and config.max_examples < len(dataset):
        dataset = stratified_subset(dataset, int(config.max_examples), config.seed)
    with tempfile.TemporaryDirectory(prefix="tl-search-") as scratch:
        if cache is None:   # the CLI: a cache for this search alone, so the probe's refit reads its embeddings back
            cache = EmbeddingCache(Path(scratch) / "embeddings")
        return Search(config, Path(run_dir), dataset, recorder, should_stop, cache, Path(scratch)).run()


class Search:
    def __init__(self, config: RunConfig, run_dir: Path, dataset: LabelledDataset, recorder: EventRecorder,
                 should_stop: Callable[[], bool], cache, scratch: Path):
        self.config, self.run_dir, self.dataset, self.recorder = config, run_dir, dataset, recorder
        self.should_stop, self.cache, self.scratch = should_stop, cache, scratch
        self.started = time.time()
        self.budget = config.budget_seconds
        self.modality = dataset.modality
        roles = split_roles(dataset, config.val_fraction, config.seed, config.evaluation)   # the tries' roles
        self.choose_targets = np.asarray(dataset.targets)[roles.choose]
        self._estimates: dict[str, float] = {}
        self.records: list[dict] = []          # metrics.json's search.trials, in order
        self.finished: list[tuple[Candidate, Tried]] = []
        self.replaying = False                 # a replay of a recorded search (`replay`)

    def estimate(self, candidate: Candidate) -> float:
        if candidate.key not in self._estimates:
            self._estimates[candidate.key] = float(estimate_seconds(candidate.config(self.config), len(self.dataset)))
        return self._estimates[candidate.key]

    def left(self) -> float:
        return self.budget - (time.time() - self.started)

    def share(self, candidate: Candidate) -> float:
        return refit_share(candidate.strategy, self.config.val_fraction)

    def reserve(self) -> float:
        """The time the winner's refit needs, if the winner is one of the finished tries: the largest of theirs."""
        return max((self.share(c) * t.seconds for c, t in self.finished), default=0.0)   # measured

    # -- the search ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        record = self.config.extra.get("search") or {}
        # a replay of the same search (same seed and budget); changed ones search afresh
        if record.get("trials") and record.get("seed") == int(self.config.seed) and record.get("budget_s") == self.budget:
            return self.replay(record["trials"])
        from optuna.trial import TrialState

        study = new_study(int(self.config.seed))
        for first in first_tries(self.modality, self.estimate):
            study.enqueue_trial(first.params)
        pool = candidates(self.modality)
        tried: dict[str, Optional[float]] = {}   # candidate key -> its value (None: not finished)
        asked = 0
        while asked < 4 * len(pool) and len(self.records) < MAX_TRIALS:
            if self.should_stop():
                return self._stopped()
            if not any(fits(self.estimate(c), self.left(), self.reserve(), self.share(c))
                       for c in pool if c.key not in tried):
                break   # nothing left that fits (or nothing left)
            trial = study.ask()
            asked += 1
            candidate = params_for(trial, self.modality)
            if candidate.key in tried:   # the sampler proposed a try already made: it learns the same answer
                value = tried[candidate.key]
                study.tell(trial, value) if value is not None else study.tell(trial, state=TrialState.PRUNED)
                continue
            estimate, left = self.estimate(candidate), self.left()
            if not fits(estimate, left, self.reserve(), self.share(candidate)):
                tried[candidate.key] = None
                study.tell(trial, state=TrialState.PRUNED)
                self._record(candidate, "skipped", 0.0, estimate=estimate, left=left,
                             note=f"would take about {estimate:.0f} s, and its refit about "
                                  f"{self.share(candidate) * estimate:.0f} s more; {max(left, 0):.0f} s were left")
                continue
            state, value = self._try(trial, candidate, estimate, left)
            if state == "user_stop":
                return self._stopped()
            tried[candidate.key] = value
            if state == "complete":
                study.tell(trial, value)
            else:
                study.tell(trial, state=TrialState.PRUNED if state in CUT_SHORT else TrialState.FAIL)
        return self._finish()

    def replay(self, recorded: list[dict]) -> RunResult:
        """The recorded search again, try by try (see the module's docstring): no budget, no sampler, no pruner."""
        self.replaying = True
        for entry in recorded:
            if self.should_stop():
                return self._stopped()
            strategy, settings = entry["strategy"], entry.get("settings") or {}
            candidate = candidate_from_params({"strategy": strategy, **{f"{strategy}.{k}": v for k, v in settings.items()}})
            if entry["state"] in TRAINED_AGAIN:
                state, _value = self._try(None, candidate, self.estimate(candidate), self.left())
                if state == "user_stop":
                    return self._stopped()
            else:
                self._record(candidate, entry["state"], float(entry.get("seconds") or 0.0), score=entry.get("val_score"),
                             note=f"{entry['state']} in the recorded search; a replay keeps that outcome")
        return self._finish()

    def _record(self, candidate: Candidate, state: str, seconds: float, *, score=None, ci=None, estimate=None,
                left=None, note: str = "", number: Optional[int] = None, curve: Optional[list] = None) -> None:
        record = {"strategy": candidate.strategy, "settings": candidate.settings_dict, "val_score": score,
                  "val_score_ci": ci, "seconds": round(seconds, 2), "state": state, "name": candidate.describe(),
                  **({"note": note} if note else {})}
        if number is None:
            self.records.append(record)
            number = len(self.records)
        else:
            self.records[number - 1] = record
        self.recorder.emit(SearchTrial(number=number, strategy=candidate.strategy, settings=candidate.settings_dict,
                                       state=state, name=candidate.describe(), val_score=score, val_score_ci=ci,
                                       seconds=round(seconds, 2), estimate_s=estimate,
                                       budget_left_s=None if left is None or self.replaying else round(left, 1), note=note,
                                       curve=list(curve or [])))

    def _try(self, trial, candidate: Candidate, estimate: float, left: float) -> tuple[str, Optional[float]]:
        """Run one try; (state, validation accuracy or None)."""
        self._record(candidate, "running", 0.0, estimate=estimate, left=left)
        number = len(self.records)
        reserve, share, started = self.reserve(), self.share(candidate), time.time()
        why: dict[str, str] = {}
        last: dict[str, float] = {}
        curve: list[float] = []   # validation accuracy per epoch: the page draws each try's as a faint line

        def listen(event) -> None:
            if isinstance(event, EpochEnd) and candidate.strategy in FINE_TUNING:
                last["score"] = float(event.val_accuracy)
                curve.append(round(float(event.val_accuracy), 4))
                self._record(candidate, "running", time.time() - started, estimate=estimate, left=left,
                             number=number, curve=curve)
                if trial is None:   # a replay: no pruner
                    return
                trial.report(float(event.val_accuracy), int(event.epoch))
                if trial.should_prune():
                    why["pruned"] = (f"validation accuracy {event.val_accuracy:.1%} after epoch {event.epoch} was "
                                     "below the median of the earlier tries there")

        def stop() -> bool:
            if self.should_stop():
                why["user"] = "stopped"
                return True
            if self.replaying:
                return False
            # Until a try has finished there is no answer at all: the first runs to the budget's end (the
            # winner's refit then runs past it); after that every try leaves room for the refit.
            if (over_budget(time.time() - started, left, reserve, share) if self.finished
                    else time.time() - started > left):
                why["budget"] = "it and the winner's refit would no longer have fitted in the budget"
                return True
            return "pruned" in why

        trial_dir = self.scratch / f"trial-{number}"
        trial_recorder = EventRecorder(trial_dir, listen)
        try:
            outcome = loop.TrainingRun(candidate.config(self.config), trial_dir, self.dataset, trial_recorder, stop,
                                       self.cache, trial=True).execute()
        except Stopped:
            if "user" in why:
                return "user_stop", None
            state = "pruned" if "pruned" in why else "stopped"
            self._record(candidate, state, time.time() - started, score=last.get("score"),
                         note=why.get("pruned") or why.get("budget", ""), number=number, curve=curve)
            return state, None
        except (ConfigError, DataError, ModelUnavailable) as exc:
            self._record(candidate, "failed", time.time() - started, note=str(exc)[:300], number=number)
            if not self.finished:   # the model or the data do not fit at all: every try would say the same
                raise
            return "failed", None
        except Exception as exc:   # one try's surprise must not end the search
            log.exception("search try %s failed", candidate.key)
            self._record(candidate, "failed", time.time() - started, note=f"{type(exc).__name__}: {str(exc)[:200]}",
                         number=number)
            return "failed", None
        finally:
            trial_recorder.status(RunState.FINISHED)
        predictions = np.asarray(outcome.choose_outputs).argmax(axis=1)
        score, ci = val_score(predictions, self.choose_targets)
        seconds = time.time() - started
        self.finished.append((candidate, Tried(candidate.describe(), predictions, cost_s=estimate, seconds=seconds)))
        self._record(candidate, "complete", seconds, score=score, ci=ci, number=number, curve=curve)
        return "complete", score

    # -- the end ------------------------------------------------------------------------------------
    def _stopped(self) -> RunResult:
        message = f"Stopped by the user during the search, after {len(self.finished)} finished tries. No model was saved."
        self.recorder.emit(RunStopped(run_id=self.run_dir.name, epoch=0, step=0, message=message))
        self.recorder.status(RunState.STOPPED, message)
        return RunResult(self.run_dir.name, self.run_dir, RunState.STOPPED, None, message)

    def _finish(self) -> RunResult:
        budget_words = f"the {_minutes(self.budget)} budget"
        if not self.finished:
            return fail_run(self.recorder, self.run_dir,
                            f"No try finished within {budget_words} (see the trial table). Raise the time budget, "
                            "or pick a strategy yourself (the linear probe takes seconds).")
        tried = [t for _c, t in self.finished]
        chosen = select(tried, self.choose_targets, seed=int(self.config.seed), budget_words=budget_words)
        winner = self.finished[chosen.winner][0]
        search = {
            "budget_s": self.budget, "sampler": SAMPLER, "seed": int(self.config.seed), "pruner": PRUNER,
            "trials": self.records, "winner": {"strategy": winner.strategy, "settings": winner.settings_dict},
            "margin": chosen.margin, "margin_ci": chosen.margin_ci, "sentence": chosen.sentence,
            "n_chosen": int(len(self.choose_targets)), "seconds": round(time.time() - self.started, 2),
            "winner_kept": "refit", "replay": self.replaying,
        }
        # run.json stays the auto config and records the search's tries: a replay repeats them (`replay`)
        self.config.extra = {**self.config.extra, "search": {k: search[k] for k in (
            "budget_s", "sampler", "seed", "pruner", "winner")} | {
            "trials": [{"strategy": r["strategy"], "settings": r["settings"], "state": r["state"],
                        "val_score": r["val_score"], "seconds": r["seconds"]} for r in self.records]}}
        self.config.save(self.run_dir / "run.json")
        refit = winner.config(self.config)
        refit.extra = {k: v for k, v in refit.extra.items() if k != "search"}
        return loop.TrainingRun(refit, self.run_dir, self.dataset, self.recorder, self.should_stop, self.cache,
                                extra_metrics={"search": search}).execute()
