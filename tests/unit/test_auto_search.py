"""Strategy `auto` (issue 40), its pure parts: the setting and its limit, the candidates, the budget rule, the
winner, the margin and its sentence, the contract blocks. Nothing here trains (tests/integration/test_auto_search.py
runs a search)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from optuna.trial import TrialState

from tl_ui.contracts.events import SearchTrial, event_from_dict
from tl_ui.contracts.metrics import Search
from tl_ui.core.config import ConfigError, RunConfig
from tl_ui.core.limits import RunLimits
from tl_ui.engine.evaluation.selection import Tried, select, val_score
from tl_ui.engine.planning.estimate import estimate_seconds
from tl_ui.engine.planning.search_plan import (Candidate, candidate_from_params, candidates, first_tries, fits,
                                               new_study, over_budget, params_for, refit_share, strategies_for)


# -- the setting -------------------------------------------------------------------------------------
def test_auto_takes_a_budget_and_leaves_epochs_to_the_tries():
    config = RunConfig.from_options({"strategy": "auto", "data_path": "x.zip"}, modality="image")
    assert config.strategy == "auto" and config.budget_minutes == 5 and config.budget_seconds == 300
    assert config.epochs is None and config.learning_rate is None   # each try has its own
    config = RunConfig.from_options({"strategy": "auto", "budget_minutes": "1.5"}, modality="image")
    assert config.budget_seconds == 90
    assert estimate_seconds(config, 300) == 90   # the Strategy step's estimate is the budget


def test_a_budget_below_the_floor_or_over_the_limit_is_refused_with_its_setting():
    with pytest.raises(ConfigError, match="at least 0.25 minutes"):
        RunConfig.from_options({"strategy": "auto", "budget_minutes": 0.1}, modality="image")
    config = RunConfig.from_options({"strategy": "auto", "budget_minutes": 90}, modality="image")
    with pytest.raises(ConfigError, match="TL_MAX_BUDGET_MINUTES"):
        RunLimits().check(config)
    RunLimits(max_budget_minutes=120).check(config)


def test_run_json_round_trip_keeps_auto_and_its_budget():
    config = RunConfig.from_options({"strategy": "auto", "budget_minutes": 2, "seed": 3}, modality="text")
    again = RunConfig.from_json(config.to_json())
    assert (again.strategy, again.budget_minutes, again.seed) == ("auto", 2, 3)


# -- the candidates ------------------------------------------------------------------------------------
def test_candidates_are_the_strategies_that_apply_times_a_few_settings():
    assert strategies_for("image") == ["linear_probe", "partial", "full", "lora"]
    assert strategies_for("text") == ["linear_probe", "partial", "full", "lora", "setfit"]
    images = candidates("image")
    assert sum(c.strategy == "linear_probe" for c in images) == 1
    assert not any(c.strategy == "setfit" for c in images)
    assert len({c.key for c in images}) == len(images)
    lora = [c for c in images if c.strategy == "lora"]
    assert {c.settings_dict["lora_rank"] for c in lora} == {8, 16}
    for c in images:   # the Optuna parameters name the same candidate back
        assert candidate_from_params(c.params) == c


def test_a_candidate_is_a_concrete_run_config_with_its_settings():
    base = RunConfig.from_options({"strategy": "auto", "budget_minutes": 2, "seed": 7, "batch_size": 16},
                                  modality="image")
    lora = Candidate("lora", (("learning_rate", 1e-3), ("epochs", 2), ("lora_rank", 16)))
    config = lora.config(base)
    assert (config.strategy, config.learning_rate, config.epochs, config.lora_rank) == ("lora", 1e-3, 2, 16)
    assert (config.seed, config.batch_size, config.budget_minutes) == (7, 16, None)
    assert lora.describe() == "LoRA (rate 0.001, 2 epochs, rank 16)"
    probe = Candidate("linear_probe").config(base)
    assert probe.strategy == "linear_probe" and probe.epochs == 30   # the strategy's own defaults


def test_the_probe_goes_first_then_the_others_cheapest_first():
    base = RunConfig.from_options({"strategy": "auto", "budget_minutes": 2, "data_path": "x"}, modality="image")
    firsts = first_tries("image", lambda c: estimate_seconds(c.config(base), 300))
    assert firsts[0].strategy == "linear_probe"
    costs = [estimate_seconds(c.config(base), 300) for c in firsts[1:]]
    assert costs == sorted(costs) and len(firsts) == 4
    assert all(c.settings_dict.get("epochs", 2) == 2 for c in firsts)   # each strategy's shortest setting


# -- the budget ------------------------------------------------------------------------------------------
def test_a_try_starts_only_when_it_and_the_refit_fit():
    assert fits(20, 45)                         # 20 s + 20 s refit
    assert not fits(20, 39)
    assert not fits(20, 45, reserve_done_s=30)  # an earlier winner's refit needs 30 s
    assert fits(20, 25, share=0.25)             # a probe's refit reads its embeddings back
    assert refit_share("linear_probe", 0.2) == pytest.approx(0.3) and refit_share("lora", 0.2) == 1.0


def test_a_running_try_is_stopped_once_it_would_not_fit():
    assert not over_budget(10, 45)
    assert over_budget(23, 45)                  # 23 s + 23 s refit > 45 s
    assert over_budget(10, 45, reserve_done_s=36)


# -- the pruner ------------------------------------------------------------------------------------------
def _finished_try(study, candidate: Candidate, per_epoch: list[float]) -> None:
    study.enqueue_trial(candidate.params)
    trial = study.ask()
    for epoch, score in enumerate(per_epoch, start=1):
        trial.report(score, epoch)
    study.tell(trial, per_epoch[-1] if per_epoch else 0.8)


def _pruned_at(study, candidate: Candidate, per_epoch: list[float]):
    """The epoch at which the search's pruner would end this try (None: it runs to the end)."""
    study.enqueue_trial(candidate.params)
    trial = study.ask()
    assert params_for(trial, "image") == candidate        # the enqueued try is the one asked for
    for epoch, score in enumerate(per_epoch, start=1):
        trial.report(score, epoch)
        if trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return epoch
    study.tell(trial, per_epoch[-1])
    return None


def test_the_pruner_ends_a_try_below_the_median_of_the_earlier_tries_at_that_epoch():
    partial = Candidate("partial", (("learning_rate", 5e-4), ("epochs", 4), ("unfreeze_groups", 2)))
    full = Candidate("full", (("learning_rate", 1e-3), ("epochs", 4)))
    lora = Candidate("lora", (("learning_rate", 3e-3), ("epochs", 4), ("lora_rank", 8)))
    study = new_study(0)
    _finished_try(study, Candidate("linear_probe"), [])          # the probe reports no epochs
    # one finished try and the probe: two startup tries, so from now on a try can be pruned
    _finished_try(study, partial, [0.50, 0.70, 0.80, 0.85])
    assert _pruned_at(study, full, [0.20, 0.30, 0.40, 0.50]) == 1     # below 0.50 after its first epoch
    assert _pruned_at(study, lora, [0.55, 0.75, 0.82, 0.90]) is None  # above the median at every epoch
    # the probe set no median: before a second try had finished, a poor fine-tuning try runs to its end
    early = new_study(0)
    _finished_try(early, Candidate("linear_probe"), [])
    assert _pruned_at(early, full, [0.10, 0.10, 0.10, 0.10]) is None


# -- the winner, the margin, the sentence --------------------------------------------------------------------
def _predictions(targets: np.ndarray, wrong: list[int]) -> np.ndarray:
    out = targets.copy()
    out[wrong] = (out[wrong] + 1) % 3
    return out


def test_within_noise_the_cheaper_try_is_kept_and_the_sentence_says_so():
    targets = np.arange(48) % 3
    lora = Tried("LoRA", _predictions(targets, [0, 5, 9]), cost_s=60.0)          # 45/48
    probe = Tried("the probe", _predictions(targets, [1, 2, 7, 11]), cost_s=5.0)  # 44/48
    chosen = select([lora, probe], targets)
    assert chosen.winner == 1 and chosen.runner_up == 0 and chosen.cheaper_kept and chosen.within_noise
    assert chosen.margin == pytest.approx(-1 / 48, abs=1e-4)
    assert chosen.margin_ci[0] < 0 < chosen.margin_ci[1]
    assert chosen.sentence.startswith("The probe and LoRA are indistinguishable on your 48 validation examples")
    assert chosen.sentence.endswith("the probe was kept because it is cheaper.")


def test_a_real_difference_keeps_the_better_try_even_when_dearer():
    targets = np.arange(60) % 3
    lora = Tried("LoRA", _predictions(targets, [0]), cost_s=60.0)                    # 59/60
    probe = Tried("the probe", _predictions(targets, list(range(1, 40, 2))), cost_s=5.0)  # 40/60
    chosen = select([probe, lora], targets)
    assert chosen.winner == 1 and not chosen.within_noise and not chosen.cheaper_kept
    assert chosen.margin == pytest.approx(19 / 60, abs=1e-4) and chosen.margin_ci[0] > 0
    assert "more than noise; LoRA was kept" in chosen.sentence


def test_one_finished_try_is_kept_without_a_comparison():
    targets = np.arange(12) % 2
    chosen = select([Tried("the probe", targets.copy(), cost_s=4.0)], targets, budget_words="the 1-minute budget")
    assert chosen.winner == 0 and chosen.margin is None and chosen.margin_ci is None
    assert chosen.sentence.startswith("Only the probe finished within the 1-minute budget")
    assert val_score(targets, targets)[0] == 1.0 and val_score(targets, targets)[1][1] == 1.0


def test_no_peeking_the_winner_is_the_one_the_validation_examples_favour():
    """A data set whose test examples favour the other candidate: choosing there would flip the winner. The
    selection takes only the validation examples, and picks the one they favour."""
    rng = np.random.default_rng(0)
    choose_targets, report_targets = rng.integers(0, 3, 80), rng.integers(0, 3, 80)
    a = Tried("partial unfreezing", _predictions(choose_targets, list(range(0, 80, 10))), 30.0)   # 72/80 on choose
    b = Tried("LoRA", _predictions(choose_targets, list(range(0, 80, 2))), 30.0)                  # 40/80 on choose
    a_on_test = _predictions(report_targets, list(range(0, 80, 2)))                               # 40/80 on test
    b_on_test = _predictions(report_targets, list(range(0, 80, 10)))                              # 72/80 on test
    on_choose = select([a, b], choose_targets)
    on_test = select([Tried(a.name, a_on_test, 30.0), Tried(b.name, b_on_test, 30.0)], report_targets)
    assert on_test.winner == 1, "the data set must be one where peeking at the test examples changes the winner"
    assert on_choose.winner == 0 and not on_choose.within_noise


# -- the contract ---------------------------------------------------------------------------------------------
def test_the_search_block_and_the_trial_event_are_typed():
    block = {"budget_s": 60.0, "sampler": "TPESampler", "seed": 0, "winner": {"strategy": "linear_probe", "settings": {}},
             "trials": [{"strategy": "linear_probe", "settings": {}, "val_score": 0.9, "val_score_ci": [0.8, 0.95],
                         "seconds": 4.2, "state": "complete"},
                        {"strategy": "lora", "settings": {"lora_rank": 8}, "val_score": None, "val_score_ci": None,
                         "seconds": 0.0, "state": "skipped"}],
             "margin": None, "margin_ci": None, "sentence": "Only the probe finished."}
    assert Search.model_validate(block).trials[1].state == "skipped"
    event = SearchTrial(number=1, strategy="lora", settings={"lora_rank": 8}, state="pruned", val_score=0.4)
    again = event_from_dict(event.to_dict())
    assert isinstance(again, SearchTrial) and again.settings == {"lora_rank": 8} and again.state == "pruned"


# -- the page's table and Results block (tl_ui/ui/search_view.py) ------------------------------------------
def test_the_live_table_keeps_each_tries_last_event_and_the_results_name_the_winner():
    from tl_ui.ui.search_view import live_trials_html, search_results_html, search_status, trial_rows

    events = [SearchTrial(number=1, strategy="linear_probe", settings={}, state="running", name="the probe",
                          budget_left_s=120.0).to_dict()]
    assert search_status(events).startswith("**Searching:** try 1: the probe")
    events += [SearchTrial(number=1, strategy="linear_probe", settings={}, state="complete", name="the probe",
                           val_score=0.75, val_score_ci=[0.55, 0.88], seconds=12.0).to_dict(),
               SearchTrial(number=2, strategy="lora", settings={"lora_rank": 8}, state="pruned", name="LoRA (rank 8)",
                           val_score=0.3, seconds=20.0, note="behind").to_dict()]
    rows = trial_rows(events)
    assert [r["state"] for r in rows] == ["complete", "pruned"]
    table = live_trials_html(events)
    assert "<caption>" in table and 'scope="col"' in table and "75.0% (55.0%–88.0%)" in table and "pruned" in table
    assert search_status(events + [{"kind": "started"}]) is None   # the winner's refit shows the usual curves
    block = {"budget_s": 120.0, "sampler": "TPESampler", "seed": 0, "n_chosen": 24,
             "trials": [{**{k: rows[0][k] for k in ("strategy", "settings", "val_score", "val_score_ci", "seconds",
                                                    "state", "name")}}],
             "winner": {"strategy": "linear_probe", "settings": {}}, "margin": None, "margin_ci": None,
             "sentence": "Only the probe finished within the 2-minute budget, so nothing was compared; it was kept."}
    shown = search_results_html(block)
    assert "Chosen by the search: the probe." in shown and "(kept)" in shown and "nothing was compared" in shown
    assert search_results_html(None) == "" and live_trials_html([]) == ""
    from tl_ui.ui.train_view import train_view

    log = train_view(events, "running").log
    assert log == ["Try 1: the probe — finished, validation accuracy 75.0%",
                   "Try 2: LoRA (rank 8) — pruned (stopped early: behind the others), validation accuracy 30.0%"]


def test_each_tries_curve_is_a_faint_line_and_the_one_under_way_a_strong_one():
    from tl_ui.ui.search_view import live_trials_html, trial_curves_svg, trial_rows

    events = [SearchTrial(number=1, strategy="linear_probe", settings={}, state="complete", name="the probe",
                          val_score=0.75, val_score_ci=[0.55, 0.88]).to_dict(),
              SearchTrial(number=2, strategy="lora", settings={}, state="pruned", name="LoRA (rank 8)",
                          val_score=0.3, curve=[0.3]).to_dict(),
              SearchTrial(number=3, strategy="full", settings={}, state="running", name="full fine-tuning",
                          curve=[0.4, 0.6]).to_dict()]
    svg = trial_curves_svg(trial_rows(events))
    assert svg.count('class="tl-try-curve"') == 2                       # the probe has no epochs: no line
    assert svg.count('opacity="0.35"') == 1 and svg.count('opacity="1.0"') == 1
    assert "<title>try 2: LoRA (rank 8)</title>" in svg and 'role="img"' in svg and "aria-label=" in svg
    # 0.3 after epoch 1 sits lower than 0.6 after epoch 2 (SVG y grows downwards)
    lines = re.findall(r'<polyline points="([^"]+)"', svg)             # try 2's, then try 3's
    last_y = [float(points.split()[-1].split(",")[1]) for points in lines]
    assert last_y[0] > last_y[1]
    assert live_trials_html(events).startswith("<figure") and trial_curves_svg(trial_rows(events[:1])) == ""
