"""The Results step without a browser: every number with its interval and plain sentence, the
reliability diagram, prediction sets, the from-scratch comparison, groups, and comparing runs.

Run folders are written by hand (the shapes of metrics.json in docs/contracts.md), so these tests
take a second and need no training."""
from __future__ import annotations

import csv
import json
import time

import pytest

from tl_ui.contracts.events import EpochEnd, RunStarted
from tl_ui.core.runfolder import RunFolder
from tl_ui.service.lab import Lab
from tl_ui.service.owners import Owner
from tl_ui.core.settings import Settings
from tl_ui.ui import compare_view, evidence, results_view

CLASSES = ["cat", "dog"]
ITEMS = [f"/data/secret/patient_{i}.dcm" for i in range(40)]
TRUTH = ["cat" if i % 2 else "dog" for i in range(40)]


def _bins(shift: float) -> list[dict]:
    return [{"low": lo / 10, "high": lo / 10 + 0.1, "confidence": lo / 10 + 0.05,
             "accuracy": min(1.0, lo / 10 + shift), "count": 4} for lo in range(5, 10)]


def full_metrics(**extra) -> dict:
    metrics = {
        "accuracy": 0.95, "accuracy_ci": [0.8308, 0.9862], "macro_f1": 0.9499, "macro_f1_ci": [0.87, 1.0],
        "ci_level": 0.95, "ci_method": "Wilson", "n_val": 40, "n_train": 120, "best_epoch": 2,
        "majority_baseline_accuracy": 0.5, "classes": CLASSES, "confusion_matrix": [[19, 1], [1, 19]],
        "accuracy_sentence": "Right on 38 of 40 test examples. With this few examples the true accuracy is "
                             "probably between 83% and 99%.",
        "per_class": {c: {"precision": 0.95, "recall": 0.95, "f1": 0.95, "support": 20,
                          "precision_ci": [0.7639, 0.9911], "recall_ci": [0.7639, 0.9911]} for c in CLASSES},
        "mistakes": [{"item": ITEMS[0], "true": "dog", "predicted": "cat", "confidence": 0.9,
                      "file": "mistakes/00.png"}],
        "evaluation": {"design": "three_way", "reported_on": "test", "n_reported": 40, "chosen_on": "validation",
                       "n_chosen": 30, "chosen": ["epoch"],
                       "sentence": "The numbers below come from 40 test examples that took no part in training "
                                   "or in any choice."},
        "calibration": {"temperature": 1.3, "ece_before": 0.12, "ece_after": 0.04, "bins": _bins(0.0),
                        "bins_before": _bins(-0.2)},
        "conformal": {"level": 0.9, "n_calibration": 30, "coverage": 0.94, "mean_set_size": 1.3,
                      "coverage_ci": [0.81, 0.98]},
        "cross_validation": {"folds": 5, "repeats": 3, "accuracy": 0.9, "accuracy_ci": [0.84, 0.96],
                             "macro_f1": 0.89, "macro_f1_ci": [0.82, 0.95], "method": "k-fold"},
        "groups": {"column": "site", "by_group": {
            "north": {"n": 30, "accuracy": 0.9667, "accuracy_ci": [0.83, 0.99], "macro_f1": 0.96,
                      "recall": {"cat": {"value": 1.0, "ci": [0.8, 1.0], "n": 15},
                                 "dog": {"value": 0.9333, "ci": [0.7, 0.99], "n": 15}}, "few_examples": False},
            "south": {"n": 10, "accuracy": 0.9, "accuracy_ci": [0.6, 0.98], "macro_f1": 0.89,
                      "recall": {"cat": {"value": None, "ci": [0, 1], "n": 0},
                                 "dog": {"value": 0.9, "ci": [0.6, 0.98], "n": 10}}, "few_examples": True}},
            "max_gap": {"accuracy": 0.0667, "between": ["north", "south"]},
            "warnings": ["Group 'south' has only 10 held-out examples: its numbers are very uncertain."]},
    }
    metrics.update(extra)
    return metrics


def write_run(lab: Lab, owner: Owner, run_id: str, metrics: dict | None, config: dict | None = None,
              state: str = "finished", predicted: list[str] | None = None, **status) -> RunFolder:
    run = RunFolder(lab.workspace.runs_dir(owner) / run_id).create()
    run.run_json.write_text(json.dumps({"model_id": "efficientnet_lite0", "strategy": "linear_probe",
                                        **(config or {})}))
    now = time.time()
    run.set_status("running")
    run.set_status(state, "", **status)
    with run.open_event_log() as fh:   # the engine's own event classes, as events.jsonl holds them
        fh.write(json.dumps(RunStarted(
            run_id=run_id, model_id="efficientnet_lite0", strategy="linear_probe", modality="image", classes=CLASSES,
            n_train=120, n_val=30, epochs=3, total_steps=45, trainable_params=2562, total_params=3_400_000,
            device="cpu", time=now).to_dict()) + "\n")
        for epoch, acc in ((1, 0.6), (2, 0.8), (3, 0.85)):
            fh.write(json.dumps(EpochEnd(
                epoch=epoch, epochs=3, step=15 * epoch, train_loss=0.5, train_accuracy=acc, val_loss=0.6,
                val_accuracy=acc, val_macro_f1=acc, elapsed_s=epoch, eta_s=3 - epoch, is_best=True).to_dict()) + "\n")
    if metrics is not None:
        run.write_metrics(metrics)
        predicted = predicted or TRUTH
        with open(run.predictions_csv, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["item", "true", "predicted", "confidence"])
            writer.writerows([i, t, p, 0.9] for i, t, p in zip(ITEMS, TRUTH, predicted))
        from PIL import Image

        run.mistakes_dir.mkdir(exist_ok=True)
        Image.new("RGB", (28, 28), "white").save(run.mistakes_dir / "00.png")
    return run


@pytest.fixture
def lab(tmp_path):
    lab = Lab(Settings(runs_dir=tmp_path / "runs", max_jobs=1), cache_dir=tmp_path / "cache")
    yield lab
    lab.close()


@pytest.fixture
def owner():
    return Owner("session", "test-session-0123456789abcdef")


def test_headline_shows_the_cross_validated_estimate_first_with_intervals_and_sentences():
    text = evidence.headline_md("r1", {"model_id": "m", "strategy": "linear_probe"}, full_metrics())
    cv_at, test_at = text.index("Cross-validated accuracy: 90% (95% interval 84%–96%)"), \
        text.index("test accuracy: 95% (95% interval 83%–99%)")
    assert cv_at < test_at
    assert "Right on 38 of 40 test examples" in text
    assert "took no part in training" in text                      # evaluation.sentence
    assert "Macro-F1" in text and "95% (95% interval 87%–100%)" in text
    assert "between 84% and 96%" in text                            # the CV plain sentence


def test_headline_without_cross_validation_or_intervals():
    metrics = full_metrics()
    del metrics["cross_validation"]
    assert "#### Test accuracy: 95% (95% interval 83%–99%)" in evidence.headline_md("r1", {}, metrics)
    old = {"accuracy": 0.8, "n_val": 10, "macro_f1": 0.7}     # a run recorded before intervals existed
    text = evidence.headline_md("r1", {}, old)
    assert "Test accuracy: 80%" in text and "interval" not in text


def test_tables_carry_intervals():
    per_class = evidence.per_class_df(full_metrics())
    assert list(per_class.columns) == evidence.PER_CLASS_COLUMNS
    assert per_class.iloc[0]["recall (95% interval)"] == "95% (76%–100%)"
    overview = evidence.overview_df(full_metrics(), {"model_id": "m", "strategy": "linear_probe"})
    values = dict(zip(overview["metric"], overview["value"]))
    assert values["Test accuracy"] == "95% (95% interval 83%–99%)"
    assert values["Validation examples (epoch, calibration chosen on)"] == "30"


def test_reliability_diagram_and_calibration_sentence():
    df = evidence.reliability_df(full_metrics()["calibration"])
    assert set(df["series"]) == {evidence.AFTER, evidence.BEFORE, evidence.DIAGONAL}
    assert df[df.series == evidence.DIAGONAL][["confidence", "accuracy"]].values.tolist() == [[0, 0], [1, 1]]
    sentence = evidence.calibration_md(full_metrics()["calibration"], full_metrics())
    assert "12.0 percentage points on average before calibration and 4.0 after" in sentence
    # a run recorded before the temperature's bounds: ECE, how the temperature was chosen, what is calibrated
    assert "**Temperature 1.30.** Chosen on the validation examples." in sentence
    assert sentence.endswith("the calibrated ones.")
    assert evidence.reliability_df(None) is None


def test_calibration_kept_at_one_and_what_the_ece_cannot_rule_out():
    """Issue 32: 40 all-right test examples do not show 'ECE 0.0' without saying what 40 cannot rule out,
    and a temperature the validation set could not inform is said to be kept at 1."""
    calibration = {"temperature": 1.0, "fit": "kept at 1", "ece_before": 0.0004, "ece_after": 0.0004,
                   "ece_after_ci": [0.0, 0.0873], "bins": _bins(0.0), "bins_before": _bins(0.0),
                   "temperature_note": "Kept at 1: all 32 validation examples were right, so they cannot show "
                                       "how sure the model should be."}
    text = evidence.calibration_md(calibration, full_metrics(calibration=calibration))
    assert "0.0 after (expected calibration error)" in text
    assert "With 40 examples, a calibration error anywhere from 0 to 8.8 points cannot be ruled out" in text
    assert "**Temperature 1.00.** Kept at 1: all 32 validation examples were right" in text
    assert "the model's own (not rescaled)" in text


def test_an_all_right_run_says_why_its_intervals_are_not_narrower():
    metrics = full_metrics(
        accuracy=1.0, accuracy_ci=[0.9124, 1.0], macro_f1=1.0, macro_f1_ci=[0.9124, 1.0],
        floored_intervals=["macro_f1_ci"], mistakes=[],
        accuracy_sentence="Right on all 40 test examples; with 40 examples that still allows a true accuracy as "
                          "low as 91%.",
        macro_f1_sentence="Macro-F1 was 100% on the 40 test examples; with 40 examples that still allows a true "
                          "macro-F1 as low as 91%.",
        cross_validation={"folds": 5, "repeats": 3, "n": 200, "accuracy": 1.0, "accuracy_ci": [0.9812, 1.0],
                          "macro_f1": 1.0, "macro_f1_ci": [0.9812, 1.0], "method": "k-fold",
                          "floored_intervals": ["accuracy_ci", "macro_f1_ci"]})
    text = evidence.headline_md("r1", {}, metrics)
    assert "Cross-validated accuracy: 100% (95% interval 98%–100%)" in text
    assert "with 200 examples that still allows a true accuracy as low as 98%" in text
    assert "Macro-F1** (every class counts the same): 100% (95% interval 91%–100%)" in text
    assert "still allows a true macro-F1 as low as 91%" in text
    assert "100%–100%" not in text
    # metrics.json without its own sentence (the sentence is made from the numbers)
    del metrics["macro_f1_sentence"]
    assert "still allows a true macro-F1 as low as 91%" in evidence.headline_md("r1", {}, metrics)


def test_no_mistakes_says_so_instead_of_an_empty_gallery(lab, owner):
    run = write_run(lab, owner, "20250101-150000-ffffff", full_metrics(mistakes=[]))
    values = results_view.show(lab, owner, run)
    assert values["mistakes_note"].startswith("No mistakes on the 40 test examples")
    assert not values["mistakes_gallery"]["visible"] and not values["mistakes_table"]["visible"]
    with_one = results_view.show(lab, owner, write_run(lab, owner, "20250101-150000-gggggg", full_metrics()))
    assert with_one["mistakes_note"] == "" and with_one["mistakes_gallery"]["visible"]


def test_conformal_sentence_or_note():
    text = evidence.conformal_md(full_metrics()["conformal"], full_metrics())
    assert "at the 90% level the set held the right class for 94% of 40 test examples" in text
    assert "with 1.3 classes on average" in text
    note = evidence.conformal_md({"level": 0.9, "coverage": None, "note": "Too few examples."}, full_metrics())
    assert "Too few examples." in note


def test_group_table_and_warnings():
    df = evidence.group_df(full_metrics()["groups"])
    assert list(df["group"]) == ["north", "south"]
    south = df.set_index("group").loc["south"]
    assert south["accuracy (95% interval)"] == "90% (60%–98%)" and "uncertain" in south["note"]
    assert south["weakest class: recall"].startswith("dog: 90%")   # a class without examples is skipped
    notes = evidence.group_md(full_metrics()["groups"])
    assert "7 points, between north (best) and south (worst)" in notes and "only 10 held-out" in notes
    assert evidence.group_df(None) is None and evidence.group_md(None) == ""


def test_show_fills_every_part_and_never_shows_the_original_item(lab, owner):
    run = write_run(lab, owner, "20250101-120000-aaaaaa", full_metrics())
    values = results_view.show_with_runs(lab, owner, run)
    assert set(values) <= set(results_view.SHOW_KEYS + results_view.RUNS_KEYS + results_view.COMPARE_KEYS)
    gallery = values["mistakes_gallery"]["value"]
    assert len(gallery) == 1 and "patient" not in gallery[0][0]
    assert values["group_table"]["visible"] and values["group_notes"]["visible"]
    assert "Tick **Also train the same recipe" in values["scratch_comparison"]
    assert list(values["runs_table"].columns) == compare_view.RUNS_COLUMNS
    assert values["compare_runs"]["value"] == [run.id]
    assert set(values["compare_plot"]["run"]) == {compare_view.legend_name(run.info())}


def test_run_without_results_says_why(lab, owner):
    run = write_run(lab, owner, "20250101-120000-bbbbbb", None, state="failed")
    values = results_view.show(lab, owner, run)
    assert values["results_summary"].startswith("This run failed")
    # an empty frame (axes, no points), never None: an empty plot is Gradio's "Empty value" box
    assert values["reliability_plot"].dropna(subset=["confidence"]).empty and not values["results_timer"].active


def test_scratch_comparison_waits_then_fills_in(lab, owner):
    scratch_id, main_id = "20250101-120100-cccccc", "20250101-120000-cccccc"
    write_run(lab, owner, scratch_id, None, config={"random_init": True}, state="running")
    main = write_run(lab, owner, main_id, full_metrics(), config={"compare_scratch": True},
                     scratch_run=scratch_id)
    values = results_view.show(lab, owner, main)
    assert "still training" in values["scratch_comparison"] and values["results_timer"].active
    assert results_view.scratch_update(lab, owner, main_id) == {}

    # the companion finishes; before the service links it (tl_ui/service/compare.py), the page
    # reads the companion's own folder; after, the main run's metrics.json
    wrong = ["dog" if t == "cat" else "cat" for t in TRUTH[:15]] + TRUTH[15:]
    write_run(lab, owner, scratch_id, full_metrics(accuracy=0.625, accuracy_ci=[0.47, 0.76]),
              config={"random_init": True}, predicted=wrong)
    before_link = results_view.scratch_update(lab, owner, main_id)
    unlinked = before_link["scratch_comparison"]
    # both ticked already: the timer stops with this update (the walk-through once waited in vain here)
    assert before_link["compare_runs"]["value"] == [main_id, scratch_id] and not before_link["results_timer"].active
    from tl_ui.service.compare import link_scratch_run

    link_scratch_run(main, RunFolder(lab.workspace.runs_dir(owner) / scratch_id))
    assert "pretraining_gain" in main.metrics()
    update = results_view.scratch_update(lab, owner, main_id)
    text = update["scratch_comparison"]
    assert text == unlinked
    assert "from the pretrained weights: 95% (83%–99%); the same recipe from random weights: 62% (47%–76%)" in text
    assert "gave +38 points of accuracy on the same 40 test examples (95% interval" in text
    assert not update["results_timer"].active
    assert update["compare_runs"]["value"] == [main_id, scratch_id]
    assert "minus" in update["compare_diff"] and "on the same 40 test examples" in update["compare_diff"]


def test_scratch_companion_that_did_not_finish(lab, owner):
    scratch_id = "20250101-130100-dddddd"
    write_run(lab, owner, scratch_id, None, state="interrupted")
    main = write_run(lab, owner, "20250101-130000-dddddd", full_metrics(), config={"compare_scratch": True},
                     scratch_run=scratch_id)
    values = results_view.show(lab, owner, main)
    assert "did not finish" in values["scratch_comparison"] and not values["results_timer"].active


def test_paired_difference_needs_the_same_examples(lab, owner):
    a = write_run(lab, owner, "20250101-140000-eeeee1", full_metrics())
    b = write_run(lab, owner, "20250101-140000-eeeee2", full_metrics())
    b.predictions_csv.write_text("item,true,predicted,confidence\nother.png,cat,cat,0.9\n")
    assert "were not scored on the same test examples" in compare_view.paired_md([("A", a), ("B", b)])
    assert "Tick **two** runs" in compare_view.paired_md([("A", a)])
    values = results_view.compare(lab, owner, [a.id, b.id, "not-a-run"])
    names = compare_view.legend_names([a.info(), b.info()])
    assert len(set(names)) == 2 and set(values["compare_plot"]["run"]) == set(names)
    colours = results_view.compare_colours(lab, owner, [a.id, b.id])["compare_plot"]["color_map"]
    assert list(colours) == names and len(set(colours.values())) == 2


def test_try_it_set_sentence():
    answer = {"probabilities": {"cat": 0.6, "dog": 0.4}, "prediction_set": ["cat", "dog"], "set_level": 0.9,
              "set_sentence": "one of: cat, dog — the model is not sure between these 2"}
    assert results_view.set_md(answer) == ("**Prediction set:** one of: cat, dog — the model is "
                                           "not sure between these 2")
    assert results_view.set_md({"probabilities": {}}) == ""
