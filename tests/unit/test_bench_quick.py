"""The benchmark package (bench/) imports, its harness does the right sums, and the page's measured
figures load. Fast: no model is loaded and nothing is trained (the benchmarks themselves are run by
hand: `python bench/run.py --quick`)."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BENCH_MODULES = ["bench", "bench.harness", "bench.data", "bench.profiles", "bench.targets", "bench.console",
                 "bench.report_tables", "bench.report", "bench.report_text", "bench.run"] + [
    f"bench.sections.{p.stem}" for p in sorted((REPO / "bench" / "sections").glob("*.py"))]


@pytest.mark.parametrize("name", BENCH_MODULES)
def test_every_bench_module_imports_without_torch_work(name):
    importlib.import_module(name)


def test_no_bench_module_is_over_400_lines():
    for path in (REPO / "bench").rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path


def test_summaries_are_medians_with_spread():
    from bench.harness import fmt_spread, mean_sd, paired_ratios, summary

    s = summary([3.0, 1.0, 2.0, 10.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.5, 1.0, 10.0, 4) and s["q1"] <= s["median"] <= s["q3"]
    assert paired_ratios([2.0, 9.0, 4.0], [1.0, 3.0, 1.0])["median"] == 3.0  # not the best round (2.0)
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])
    m = mean_sd([0.5, 0.6, 0.7, float("nan")])
    assert m["mean"] == 0.6 and m["sd"] == 0.1 and m["n"] == 3  # sample sd; failed runs (NaN) dropped
    assert mean_sd([0.4])["sd"] == 0.0
    assert fmt_spread(summary([1.0, 2.0, 3.0])) == "2.00 (1.00-3.00, 3 rounds)"


def test_ab_rounds_alternate_which_side_goes_first():
    from bench.harness import alternating, interleave

    assert alternating(4) == [("A", "B"), ("B", "A"), ("A", "B"), ("B", "A")]
    calls = []
    out = interleave({k: (lambda k=k: calls.append(k) or len(calls)) for k in "xyz"}, 2)
    assert calls == list("xyzzyx") and out == {"x": [1, 6], "y": [2, 5], "z": [3, 4]}


def test_clock_measures_wall_and_cpu():
    from bench.harness import Clock

    import time

    with Clock() as busy:
        sum(i * i for i in range(300_000))
    with Clock() as idle:
        time.sleep(0.2)
    assert busy.cpu > 0 and idle.wall >= 0.2
    assert idle.cpu < 0.5 * idle.wall   # sleeping costs wall-clock time, not CPU time


def test_heldout_split_keeps_every_class_in_the_pool():
    from bench.data import heldout_split
    from tl_ui.data import LabelledDataset

    ds = LabelledDataset("text", [f"t{i}" for i in range(40)], ["a", "b"] * 20)
    split = heldout_split(ds, 5, seed=1)
    assert len(split["heldout"]) == 10 and len(split["pool"]) == 30
    assert set(split["heldout"].items).isdisjoint(split["pool"].items)
    assert split["heldout"].class_counts() == {"a": 5, "b": 5}
    with pytest.raises(ValueError):
        heldout_split(ds, 20)


def test_claims_summary_and_targets_on_toy_runs():
    from bench.sections.claims import summarise
    from bench.targets import targets_table

    runs = [{"modality": "text", "strategy": s, "seed": k, "n": 300, "wall_s": w, "estimate_s": 10.0,
             "epochs_run": 5, "epochs": 5, "heldout_accuracy": a, "engine_val_accuracy": a}
            for s, k, w, a in [("linear_probe", 0, 3.0, 0.6), ("linear_probe", 1, 4.0, 0.7),
                               ("lora", 0, 12.0, 0.7), ("lora", 1, 24.0, 0.8)]]
    c = summarise(runs, {"seeds": [0, 1], "text_heldout_per_class": 50, "image_heldout_per_class": 6})
    assert c["text_sample"]["lora"]["mean"] == 0.75 and c["text_lora_minus_probe"]["mean"] == 0.1
    assert c["time_estimate"]["text/linear_probe"]["ratio"] == 0.35 and not c["time_estimate"]["text/linear_probe"]["within_2x"]
    assert c["time_estimate"]["text/lora"]["within_2x"] and c["time_estimate"]["text/lora"]["measured_s"] == 18.0
    rows = targets_table({"sections": {"claims": c}})
    assert [r["met"] for r in rows] == [False, True]


def test_report_renders_figures_and_the_app_reads_them(tmp_path, monkeypatch):
    from bench import report
    from bench.sections.claims import summarise
    from tl_ui.core import measured

    runs = [{"modality": "text", "strategy": s, "seed": k, "n": 300, "wall_s": 5.0, "estimate_s": 5.0, "epochs_run": 5,
             "epochs": 5, "heldout_accuracy": a, "engine_val_accuracy": a}
            for s, k, a in [("linear_probe", 0, 0.62), ("linear_probe", 1, 0.66), ("lora", 0, 0.70), ("lora", 1, 0.74)]]
    full = {"mode": "full", "command": "python bench/run.py", "machine": {"cpu": "toy", "cores": 2},
            "sections": {"claims": summarise(runs, {"seeds": [0, 1], "text_heldout_per_class": 50,
                                                     "image_heldout_per_class": 6})},
            "reruns": [{"command": report.CLAIMS_COMMAND, "sections": ["claims"], "started": "now", "cpu": "toy"}]}
    page = report.render_generated(full, {})
    assert report.MARKER in page and "sample reviews, LoRA: 72.0% ± 2.8%" in page
    figures = report.figures(*report.claims_source(full))
    assert figures["command"] == report.CLAIMS_COMMAND and figures["text_sample"]["lora"]["seeds"] == 2
    path = tmp_path / "measured_figures.json"
    path.write_text(json.dumps(figures))
    monkeypatch.setattr(measured, "FIGURES_PATH", path)
    assert measured.load_measured_figures()["time_estimate"]["text/lora"]["ratio"] == 1.0
    assert measured.text_strategy_claim() == ("on the sample reviews LoRA scored 72% ± 3% and a linear probe 64% ± 3% "
                                              "(2 seeds; docs/benchmarks.md); on the same splits LoRA minus probe was +8 ± 0 points, "
                                              "a difference beyond the spread of 2 seeds")
    noisy = {**figures, "text_lora_minus_probe": {"mean": 0.05, "sd": 0.139, "n": 3}}
    path.write_text(json.dumps(noisy))
    measured._load.cache_clear()
    assert measured.text_strategy_claim().endswith("+5 ± 14 points, which 3 seeds cannot tell from chance")
    monkeypatch.setattr(measured, "FIGURES_PATH", tmp_path / "missing.json")
    assert measured.load_measured_figures() == {} and measured.text_strategy_claim() is None


def test_text_default_is_the_best_app_strategy_on_shared_draws(tmp_path, monkeypatch):
    """bench/sections/text_small_n.py picks, per size, the cheapest app strategy within a point of the
    best method on the draws every method ran on; the app preselects it by the user's number of texts
    and says why."""
    from bench import report_text
    from bench.sections.text_small_n import choose_default
    from tl_ui.core import measured
    from tl_ui.core.config import default_strategy
    from tl_ui.core.measured_text import text_default

    def cell(per_draw):
        return {"accuracy": sum(per_draw) / len(per_draw), "ci": [0.4, 0.8], "draws": len(per_draw),
                "per_draw": per_draw, "median_s": 1.0, "test_per_draw": 100}

    sizes = {"16": {"sklearn": cell([0.60, 0.70]), "probe": cell([0.60, 0.69]), "setfit": cell([0.66]),
                    "lora": cell([0.55])},
             "32": {"sklearn": cell([0.62, 0.66]), "probe": cell([0.62, 0.65])},   # LoRA not run: no pick
             "128": {"sklearn": cell([0.70]), "probe": cell([0.68]), "setfit": cell([0.69]), "lora": cell([0.72]),
                     "full": cell([0.725])},                                 # LoRA within a point of full
             "300": {"sklearn": cell([0.70, 0.70]), "probe": cell([0.71, 0.70]), "setfit": cell([0.69]),
                     "lora": cell([0.705])}}
    results = {"command": "python -m bench.sections.text_small_n", "started": "now", "seconds": 1.0, "notes": {},
               "settings": {"max_length": 48, "repeats": 2, "test_cap": 100, "setfit_pairs": 160, "slow": ["setfit", "lora"],
                            "slow_repeats": 1, "slow_sizes": [16, 300], "slow_datasets": ["reviews"]},
               "datasets": {"reviews": {"description": "toy", "n_texts": 400, "classes": ["a", "b"],
                                        "embed_all_s": 1.0, "sizes": sizes}}}
    results["default"] = picks = choose_default(results)
    # draw 0 only: SetFit 0.66 vs the probe's 0.60, inside the probe's interval on 100 texts (51%-69%): not SetFit
    assert picks["16"]["strategy"] == "linear_probe" and picks["16"]["all"]["setfit"] == 0.66
    assert picks["300"]["strategy"] == "linear_probe" and picks["300"]["gap"] == 0.01   # 0.71 vs LoRA 0.705: a tie
    assert picks["128"]["strategy"] == "lora" and picks["128"]["gap"] == 0.02         # cheaper than full, 0.005 below
    assert "32" not in picks and "| 300 | linear_probe |" in "\n".join(report_text.render(results))
    path = tmp_path / "measured_figures.json"
    path.write_text(json.dumps(report_text.figures(results)))
    monkeypatch.setattr(measured, "FIGURES_PATH", path)
    measured._load.cache_clear()
    try:
        assert text_default(20)["strategy"] == "linear_probe" and text_default(5)["size"] == 16   # below: the smallest row
        assert "came within a point of the best (full fine-tuning)" in text_default(128)["sentence"]
        assert default_strategy("text", 400) == "linear_probe" and default_strategy("image", 400) == "linear_probe"
        assert text_default(400)["sentence"].startswith("The linear probe is preselected for your 400 texts")
        assert "give or take 9 points on its 100 test texts" in text_default(400)["sentence"]   # Wilson, 71 of 100
        assert text_default(None) is None and text_default(40) is None   # no size within a factor of 2
        assert default_strategy("text", 40) == "lora"                   # unmeasured there: the static default
    finally:
        measured._load.cache_clear()


def test_setfit_is_preselected_only_above_the_probes_interval():
    from bench.sections.text_small_n import beats_interval, choose_default

    assert not beats_interval(0.69, 0.60, 100) and beats_interval(0.70, 0.60, 100)   # Wilson 60/100: 50.2%-69.2%
    assert not beats_interval(0.9, 0.6, 0)

    def cell(a):
        return {"accuracy": a, "ci": [0, 1], "draws": 1, "per_draw": [a], "median_s": 1.0, "test_per_draw": 100}

    sizes = {"64": {"sklearn": cell(0.6), "probe": cell(0.6), "setfit": cell(0.75), "lora": cell(0.5)}}
    picks = choose_default({"datasets": {"reviews": {"sizes": sizes}}})
    assert picks["64"]["strategy"] == "setfit"


def test_a_rerun_of_one_method_replaces_its_cells_and_chooses_again():
    from bench import report_text
    from bench.sections.text_small_n import merge_rerun

    def cell(a):
        return {"accuracy": a, "ci": [0.5, 0.8], "draws": 1, "per_draw": [a], "median_s": 1.0, "test_per_draw": 100}

    previous = {"command": "c", "started": "now", "seconds": 1.0, "notes": {},
                "settings": {"max_length": 48, "repeats": 1, "test_cap": 100, "setfit_pairs": 480, "slow": ["setfit", "lora"],
                             "slow_repeats": 1, "slow_sizes": [128], "slow_datasets": ["reviews"]},
                "datasets": {"reviews": {"description": "toy", "n_texts": 400, "classes": ["a", "b"], "embed_all_s": 1.0,
                                         "sizes": {"128": {"sklearn": cell(0.6), "probe": cell(0.6), "setfit": cell(0.6),
                                                           "lora": cell(0.62)}}}}}
    new = {"datasets": {"reviews": {"sizes": {"128": {"setfit": cell(0.75)}}}}}
    record = {"command": "python -m bench.sections.text_small_n --methods setfit --sizes 128", "methods": ["setfit"],
              "sizes": [128], "setfit_pairs": 8000, "started": "later", "seconds": 60.0}
    merged = merge_rerun(previous, new, record)
    assert merged["datasets"]["reviews"]["sizes"]["128"]["setfit"]["accuracy"] == 0.75
    assert merged["datasets"]["reviews"]["sizes"]["128"]["lora"]["accuracy"] == 0.62   # the other cells stay
    assert merged["default"]["128"]["strategy"] == "setfit"
    page = "\n".join(report_text.render(merged))
    assert "0.750 [0.50, 0.80] ×1, 1.0 s †" in page and "Re-run †: SetFit at n = 128" in page


# -- a benchmark never measures a run that did not finish (issue 32, item 5) ------------------------

def test_require_finished_passes_finished_runs_and_stops_at_any_other():
    from bench.harness import RunFailed, require_finished
    from tl_ui.engine.training.recorder import RunResult

    done = RunResult("r", Path("r"), "finished", {})
    assert require_finished(done, "x") is done
    with pytest.raises(RunFailed, match=r"memory image: the run failed: 20 examples in 10 classes are too few"):
        require_finished(RunResult("r", Path("r"), "failed", None, "20 examples in 10 classes are too few"),
                         "memory image")
    stopped = {"status": "stopped", "steps": 1}
    assert require_finished(stopped, "x", stopped_ok=True) is stopped
    with pytest.raises(RunFailed):
        require_finished(stopped, "x")
    with pytest.raises(RunFailed, match="failed: boom"):
        require_finished({"state": "failed", "message": "boom"}, "app")   # /train's answer, a runner job's state


def test_require_finished_reads_a_run_folder(tmp_path):
    from bench.harness import RunFailed, require_finished

    with pytest.raises(RunFailed, match="left no status"):
        require_finished(tmp_path, "cli")
    (tmp_path / "status.json").write_text(json.dumps({"state": "failed", "message": "bad data"}))
    with pytest.raises(RunFailed, match="bad data"):
        require_finished(tmp_path, "cli")
    (tmp_path / "status.json").write_text(json.dumps({"state": "finished", "message": ""}))
    assert require_finished(str(tmp_path), "cli") == str(tmp_path)


def test_memory_rows_of_runs_that_did_not_train_are_refused():
    """The quick profile's 20 digits were refused by the split and their 640 MB recorded as a peak."""
    from bench.harness import RunFailed
    from bench.sections.memory import checked

    failed = {"peak_rss_mb": 640, "status": "failed", "message": "too few", "steps": 0, "n_examples": 20}
    with pytest.raises(RunFailed, match="too few"):
        checked(failed, "lora_image", 1)
    with pytest.raises(RunFailed, match="0 training steps"):
        checked({**failed, "status": "stopped"}, "lora_image", 1)
    ok = {**failed, "status": "stopped", "steps": 1}
    assert checked(ok, "lora_image", 1) is ok
    with pytest.raises(RunFailed):   # a whole run is asked for: stopping is a failure there
        checked(ok, "lora_image", 0)


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_memory_profiles_use_sizes_the_three_way_split_takes(mode, tmp_path):
    from bench.profiles import PROFILES
    from tl_ui.data import load_dataset, sample_dataset_path, stratified_subset
    from tl_ui.engine.evaluation.roles import split_roles

    n = PROFILES[mode]["memory"]["n"]
    for modality in ("image", "text"):
        dataset = load_dataset(str(sample_dataset_path(modality)), tmp_path / modality)
        roles = split_roles(stratified_subset(dataset, n, 0), 0.2, 0)   # raises DataError when refused
        assert len(roles.train) >= len(dataset.classes)


# Where a run is started: the engine, the app's worker, the CLI, the app's API, the service.
RUN_STARTS = ("train_run(", "app_run.run(", '"tl_ui", "train"', 'main(["train"', 'api_name="/train"', ".start_run(")
# Modules that start runs but check them otherwise, and why.
CHECKED_ELSEWHERE = {
    "bench/sections/app_run.py": "the runner itself: returns the status; every caller passes it to require_finished",
    "bench/load.py": "a load test: a failed run is its outcome, printed as FAILED, timed nowhere, exit code 1",
}


def test_every_bench_module_that_starts_a_run_checks_it_finished():
    for path in sorted((REPO / "bench").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        source = path.read_text()
        starts = sum(source.count(s) for s in RUN_STARTS)
        if not starts or rel in CHECKED_ELSEWHERE:
            continue
        assert "require_finished(" in source, f"{rel} starts runs but never calls bench.harness.require_finished"


def test_the_summary_prints_no_figure_of_a_failed_section(capsys):
    from bench.console import failed_sections, print_report

    results = {"mode": "quick", "machine": {}, "sections": {
        "memory": {"error": "RunFailed: memory linear_probe_image: the run failed: too few", "machine_load": {}}}}
    print_report(results, "bench/results.json")
    out = capsys.readouterr().out
    assert failed_sections(results) == {"memory": results["sections"]["memory"]["error"]}
    assert "FAILED section memory" in out and "peak RSS" not in out and "1 section(s) FAILED" in out


def test_setfit_bench_reads_the_estimate_the_page_shows_and_renders_its_tables():
    """bench/sections/setfit_check.py (issue 32, item 3): the estimate shown first is the CV when metrics.json has
    one, else the test set's; the report renders the three parts from the results file's layout."""
    from bench import report_setfit
    from bench.sections.setfit_check import shown_estimate, summarise
    from statsmodels.stats.proportion import proportion_confint

    probe = {"accuracy": 0.6, "accuracy_ci": [0.4, 0.8], "n_val": 13,
             "cross_validation": {"accuracy": 0.55, "accuracy_ci": [0.42, 0.69], "scope": "whole_recipe"}}
    assert shown_estimate(probe) == {"which": "cross-validated (whole_recipe)", "accuracy": 0.55, "ci": [0.42, 0.69]}
    setfit = {k: v for k, v in probe.items() if k != "cross_validation"}
    assert shown_estimate(setfit)["which"] == "test set (13 texts)"

    runs = [{"seed": s, "correct": c, "total": 200, "seconds": 100.0, "pairs": 640, "shift_max_abs": 4e-4,
             "shift_relative": 1.6e-3, "others_share": 0.5} for s, c in ((0, 100), (1, 120))]
    cell = summarise(runs, proportion_confint)
    assert cell["accuracy"] == 0.55 and cell["seeds"] == 2 and cell["ci"][0] < 0.55 < cell["ci"][1]
    results = {
        "issue": {"command": "c", "started": "now", "seconds": 10, "setfit_max_pairs": 480, "runs": [
            {"seed": 0, "strategy": "setfit", "heldout_accuracy": 0.63, "shown": shown_estimate(setfit), "covers": True,
             "head_only_cv": {"accuracy": 0.7, "ci": [0.65, 0.75]}, "head_only_cv_covers": False,
             "encoder_shift": {"max_abs": 2.6e-4}, "wall_s": 100.0, "others_share": 0.1}]},
        "sizes": {"command": "c", "started": "now", "machine": {}, "datasets": {"reviews": {"sizes": {"16": {
            "probe": summarise([{k: v for k, v in r.items() if not k.startswith(("shift", "pairs"))} for r in runs],
                               proportion_confint),
            "setfit_paper": cell}}}}},
    }
    page = "\n".join(report_setfit.render(results))
    assert "| 0 | setfit | 63.0% | test set (13 texts): 60.0% [40–80%] | yes | 70.0% [65–75%] | **no** |" in page
    assert "| reviews | 16 | SetFit, 20 iterations per text | 55.0% [" in page and "| 640 | 100.0 | 4.0e-04, 1.6e-03 |" in page
    assert "still running or cut short" in page and report_setfit.render({}) == []
