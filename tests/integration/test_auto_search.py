"""Strategy `auto` (issue 40) end to end: `train --strategy auto --budget-minutes N` searches within the budget,
scores every try on the validation examples only, refits the winner and reports it once on the test examples.
Kept small (120 digits at 64 px, a 1-minute budget); the pure parts are tests/unit/test_auto_search.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.helpers.baselines import assert_beats_the_majority_class
from tl_ui.contracts.metrics import RunMetrics
from tl_ui.core.config import RunConfig
from tl_ui.data import sample_dataset_path

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
BUDGET_MIN = 1.0   # the probe on 120 digits at 64 px: 5-20 s here (51-57 s once under load average 16-21)
# Slack over the budget: the worker's start (importing torch) is not in the budget, and the first try runs to
# the budget's end when nothing else has finished, its refit after it (tl_ui/engine/search/run.py).
SLACK_S = 75.0


def test_auto_searches_within_the_budget_and_reports_the_winner_once(tmp_path):
    """Up to about 2.5 minutes on a busy 2-core machine: a 1-minute search, its refit and the process start."""
    out = tmp_path / "auto"
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "tl_ui", "train", "--data", str(sample_dataset_path("image")),
                           "--strategy", "auto", "--budget-minutes", str(BUDGET_MIN), "--image-size", "64",
                           "--max-examples", "120", "--seed", "1", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, cwd=REPO, env=ENV, timeout=280)
    elapsed = time.time() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed <= 60 * BUDGET_MIN + SLACK_S, f"{elapsed:.0f} s for a {BUDGET_MIN:g}-minute budget"

    metrics = json.loads((out / "metrics.json").read_text())
    typed = RunMetrics.model_validate(metrics)
    search = typed.search
    assert search is not None and search.budget_s == 60 * BUDGET_MIN
    assert (search.sampler, search.seed) == ("TPESampler", 1)
    finished = [t for t in search.trials if t.state == "complete"]
    assert finished and finished[0].strategy == "linear_probe"          # the cheap try first
    assert all(t.val_score is not None and t.val_score_ci[0] <= t.val_score <= t.val_score_ci[1] for t in finished)
    assert (search.winner.strategy, search.winner.settings) in [(t.strategy, t.settings) for t in finished]
    assert metrics["strategy"] == search.winner.strategy                 # the run's model is the winner's
    assert search.sentence and (search.margin is None) == (len(finished) == 1)
    # chosen on the validation examples, reported once on the other, untouched test examples
    evaluation = metrics["evaluation"]
    assert search.n_chosen == evaluation["n_chosen"] and evaluation["reported_on"] == "test"
    assert evaluation["n_chosen"] + evaluation["n_reported"] < 120
    assert metrics["calibration"] and metrics["conformal"] and metrics["accuracy_ci"]
    assert_beats_the_majority_class(metrics)

    # run.json stays the auto config (a replay searches again) and records the search
    run = RunConfig.load(out / "run.json")
    assert run.strategy == "auto" and run.budget_minutes == BUDGET_MIN
    assert run.extra["search"]["seed"] == 1 and run.extra["search"]["winner"] == search.winner.model_dump()
    # the page follows the tries live: one 'trial' event when each starts and when it ends
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    trial_events = [e for e in events if e["kind"] == "trial"]
    assert {e["state"] for e in trial_events} >= {"running", "complete"}
    assert max(e["number"] for e in trial_events) == len(search.trials)
    assert [e["kind"] for e in events].index("started") > [e["kind"] for e in events].index("trial")


def test_a_try_never_sees_a_test_example(digits, tmp_path):
    """The search's tries are TrainingRuns with `trial=True`: their test role is empty, so nothing a try does (and
    nothing chosen from it) can depend on a test example. Builds the run only (no model, no training)."""
    from tl_ui.engine.training.loop import TrainingRun
    from tl_ui.engine.training.recorder import EventRecorder

    config = RunConfig.from_options({"strategy": "linear_probe", "seed": 2}, modality="image")
    recorder = EventRecorder(tmp_path / "t", None)
    ordinary = TrainingRun(config, tmp_path / "o", digits, recorder, lambda: False)
    trial = TrainingRun(config, tmp_path / "t", digits, recorder, lambda: False, trial=True)
    assert len(ordinary.examples.report_items) > 0
    assert trial.examples.report_items == [] and len(trial.roles.report) == 0 and len(trial.examples.report_targets) == 0
    assert trial.examples.val_items == ordinary.examples.val_items            # the same choose examples
    assert np.array_equal(trial.roles.train, ordinary.roles.train)


def test_stop_ends_the_search_and_its_try(digits, tmp_path):
    """Stop while the first try trains: the try ends at its next step, no other try starts, no model is kept."""
    from tl_ui.contracts import RunState
    from tl_ui.contracts.events import SearchTrial
    from tl_ui.engine import train_run

    seen: list = []
    config = RunConfig.from_options({"strategy": "auto", "budget_minutes": 2, "image_size": 64, "max_examples": 60},
                                    modality="image")
    result = train_run(config, tmp_path / "run", dataset=digits, on_event=seen.append,
                       should_stop=lambda: any(isinstance(e, SearchTrial) for e in seen))
    assert result.status == RunState.STOPPED and "Stopped by the user during the search" in result.message
    trials = [e for e in seen if isinstance(e, SearchTrial)]
    assert [t.state for t in trials] == ["running"]          # the first try, ended; nothing after it
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "run" / "model").exists()


def test_a_replay_repeats_the_recorded_search_exactly(digits, tmp_path):
    """run.json records the tries; a replay of it (the CLI's `train --config run.json`: RunConfig.load) makes the
    same tries in the same order, trains the finished ones again to the same validation scores, keeps the cut-short
    ones as recorded and chooses the same winner, whose test numbers are the same. About a minute: a 40-second
    search on 80 digits at 64 px, then its replay."""
    from tl_ui.engine import train_run

    config = RunConfig.from_options({"strategy": "auto", "budget_minutes": 40 / 60, "image_size": 64,
                                     "max_examples": 80, "seed": 3}, modality="image")
    first = train_run(config, tmp_path / "first", dataset=digits)
    assert first.status.value == "finished", first.message
    recorded = RunConfig.load(tmp_path / "first" / "run.json")
    assert [t["state"] for t in recorded.extra["search"]["trials"]] == [t["state"] for t in first.metrics["search"]["trials"]]

    again = train_run(recorded, tmp_path / "again", dataset=digits)
    assert again.status.value == "finished", again.message
    before, after = first.metrics["search"], again.metrics["search"]
    assert after["replay"] and not before["replay"]
    key = lambda t: (t["strategy"], t["settings"], t["state"], t["val_score"])   # noqa: E731
    assert [key(t) for t in after["trials"]] == [key(t) for t in before["trials"]]
    assert after["winner"] == before["winner"] and after["margin"] == before["margin"]
    assert again.metrics["accuracy"] == first.metrics["accuracy"]
    assert again.metrics["n_val"] == first.metrics["n_val"]
    # a changed budget is a new search, not a replay
    changed = RunConfig.from_dict({**recorded.to_dict(), "budget_minutes": 0.5})
    assert changed.extra["search"]["budget_s"] != changed.budget_seconds
