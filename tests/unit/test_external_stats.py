"""External validation's numbers without a model (issue 34): class matching, Newcombe's difference,
validation.json's fields and intervals, the unlabelled inputs' reader. No training here."""
from __future__ import annotations

import numpy as np
import pytest

from tl_ui.contracts import ValidationReport
from tl_ui.data import DataError
from tl_ui.data.limits import Limits
from tl_ui.data.unlabelled import load_inputs
from tl_ui.engine.evaluation.external import match_classes, validation_report
from tl_ui.trust import wilson_interval
from tl_ui.trust.two_samples import difference_sentence, newcombe_difference

from tests.helpers.data_factories import png_bytes, write_csv, zip_of

CLASSES = ["cat", "dog", "fox"]


def test_classes_match_exactly_then_ignoring_case_and_unknown_ones_are_counted():
    match = match_classes(CLASSES, ["cat", "Dog ", "wolf", "cat", "wolf", "bear"])
    assert match.keep == [0, 1, 3]
    assert match.targets.tolist() == [0, 1, 0]
    assert match.excluded_classes == {"wolf": 2, "bear": 1} and match.n_excluded == 3
    assert match.missing_classes == ["fox"]
    assert match.renamed == {"Dog ": "dog"}
    words = " ".join(match.sentences())
    assert "3 examples" in words and "'wolf' (2)" in words and "'fox'" in words


def test_newcombe_difference_matches_the_published_example_and_keeps_width_at_the_ends():
    # Newcombe (1998), Table II example (56/70 vs 48/80): difference 0.2, method 10 interval 0.0524 to 0.3339
    difference, ci = newcombe_difference(56, 70, 48, 80)
    assert difference == pytest.approx(0.2)
    assert ci[0] == pytest.approx(0.0524, abs=2e-4) and ci[1] == pytest.approx(0.3339, abs=2e-4)
    # all right on both sides: still an interval as wide as the two Wilson intervals allow
    difference, ci = newcombe_difference(40, 40, 40, 40)
    low40 = wilson_interval(40, 40)[0]
    assert difference == 0 and ci[0] <= -(1 - low40) + 1e-3 and ci[1] >= (1 - low40) - 1e-3
    assert "cannot tell" in difference_sentence(difference, ci)
    assert "lower on the new data" in difference_sentence(*newcombe_difference(95, 100, 60, 100))
    assert newcombe_difference(3, 0, 2, 5) == (0.0, [-1.0, 1.0])


def _internal(n=100, accuracy=0.9):
    return {"n_val": n, "accuracy": accuracy, "accuracy_ci": list(wilson_interval(int(accuracy * n), n)),
            "macro_f1": accuracy, "macro_f1_ci": [accuracy - 0.1, accuracy + 0.05],
            "per_class": {c: {"recall": accuracy, "recall_ci": [0.8, 0.95], "support": s}
                          for c, s in zip(CLASSES, (50, 30, 20))},
            "calibration": {"ece_after": 0.03, "ece_after_ci": [0.01, 0.08]},
            "conformal": {"coverage": 0.9, "coverage_ci": [0.83, 0.94], "mean_set_size": 1.2},
            "familiarity": {"test_flag_rate": 0.01, "test_flag_rate_ci": [0.0, 0.05]}}


def _report(n_right, n, *, unlike=None, sets=True):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, size=n)
    predicted = targets.copy()
    wrong = rng.choice(n, size=n - n_right, replace=False)
    predicted[wrong] = (targets[wrong] + 1) % 3
    probs = np.full((n, 3), 0.1)
    probs[np.arange(n), predicted] = 0.8
    labels = [CLASSES[t] for t in targets]
    match = match_classes(CLASSES, labels + ["wolf"])
    unlike = unlike if unlike is not None else [bool(i in set(wrong[: len(wrong) // 2])) for i in range(n)]
    prediction_sets = [[CLASSES[p]] for p in predicted] if sets else [None] * n
    return validation_report(run_id="r1", data_sha256="abc", classes=CLASSES, probs=probs, match=match,
                             prediction_sets=prediction_sets, unlike=unlike, internal_metrics=_internal(),
                             set_level=0.9 if sets else None), wrong


def test_validation_json_has_the_contract_fields_and_honest_intervals():
    report, wrong = _report(60, 80)
    for key in ("run_id", "data_sha256", "n", "n_excluded", "excluded_classes", "missing_classes", "accuracy",
                "accuracy_ci", "macro_f1", "macro_f1_ci", "per_class", "calibration", "conformal", "familiarity",
                "label_shift", "internal", "difference"):
        assert key in report, key
    assert report["n"] == 80 and report["n_excluded"] == 1 and report["excluded_classes"] == {"wolf": 1}
    assert report["accuracy"] == 0.75 and report["accuracy_ci"] == list(wilson_interval(60, 80))
    assert set(report["calibration"]) >= {"ece", "ece_ci"} and report["calibration"]["ece_ci"][0] <= report["calibration"]["ece"]
    assert set(report["conformal"]) >= {"level", "coverage", "coverage_ci", "mean_set_size"}
    assert report["conformal"]["coverage"] == 0.75 and report["conformal"]["mean_set_size"] == 1
    fam = report["familiarity"]
    assert fam["n_flagged"] == len(wrong) // 2 and fam["accuracy_flagged"] == 0.0
    assert fam["accuracy_unflagged"] == pytest.approx(60 / (80 - len(wrong) // 2), abs=1e-4)
    assert report["label_shift"]["cat"][0] == 0.5 and sum(v[1] for v in report["label_shift"].values()) == pytest.approx(1, abs=1e-3)
    # internal 90/100 against 60/80: Newcombe's interval, excluding 0
    assert report["difference"]["accuracy"] == pytest.approx(0.15)
    assert report["difference"]["accuracy_ci"] == newcombe_difference(90, 100, 60, 80)[1]
    assert report["difference"]["accuracy_ci"][0] > 0
    assert report["internal"]["accuracy"] == 0.9 and report["internal"]["ece"] == 0.03
    ValidationReport.model_validate(report)   # what RunFolder.write_validation writes through


def test_all_right_on_few_new_examples_is_not_reported_as_certain():
    report, _ = _report(12, 12, unlike=[False] * 12)
    assert report["accuracy"] == 1.0 and report["accuracy_ci"][0] < 0.8
    assert report["macro_f1"] == 1.0 and report["macro_f1_ci"][0] < 0.8       # floored to what 12 allow
    assert "macro_f1_ci" in report["floored_intervals"]
    assert report["calibration"]["ece_ci"][1] > 0.05                           # 12 examples cannot rule it out


def test_runs_without_sets_or_familiarity_say_so_instead_of_inventing_numbers():
    report, _ = _report(30, 40, unlike=[None] * 40, sets=False)
    assert report["conformal"]["coverage"] is None and report["conformal"]["note"]
    assert report["familiarity"]["n_flagged"] is None and report["familiarity"]["note"]


def test_unlabelled_images_in_any_folders_and_tables_of_texts(tmp_path):
    archive = zip_of(tmp_path / "batch.zip", {"scans/a/1.png": png_bytes(1), "scans/b/2.png": png_bytes(2),
                                              "scans/notes.txt": b"hello"})
    inputs = load_inputs(archive, tmp_path / "work")
    assert inputs.modality == "image" and inputs.names == ["a/1.png", "b/2.png"]
    assert "skipped" in inputs.warnings[0]
    table = write_csv(tmp_path / "t.csv", ["id", "text"], [[1, "a lovely film"], [2, "dull and long"]])
    inputs = load_inputs(table, tmp_path / "work2")
    assert inputs.modality == "text" and inputs.items == ["a lovely film", "dull and long"]
    assert inputs.names == ["row 2", "row 3"]


def test_unlabelled_inputs_keep_the_upload_limits(tmp_path):
    archive = zip_of(tmp_path / "many.zip", {f"x/{i}.png": png_bytes(i) for i in range(5)})
    with pytest.raises(DataError, match="at most 3"):
        load_inputs(archive, tmp_path / "w", limits=Limits(max_files=3, max_uncompressed_bytes=10**9))
    with pytest.raises(DataError, match="accepts uploads up to"):
        load_inputs(archive, tmp_path / "w2", limits=Limits(max_upload_bytes=10))
    with pytest.raises(DataError, match="no images"):
        load_inputs(zip_of(tmp_path / "e.zip", {"x/readme.md": b"hi", "x/b.md": b"ho"}), tmp_path / "w3")


def test_only_the_owner_can_check_or_score_with_a_run_and_bad_uploads_are_refused_before_any_worker(tmp_path):
    from tl_ui.core.settings import Settings
    from tl_ui.service.errors import UserError
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner

    lab = Lab(Settings(runs_dir=tmp_path / "runs"))
    try:
        alice, bob = Owner("user", "alice"), Owner("user", "bob")
        run = lab.workspace.new_run(alice).create()
        (run.model_dir).mkdir()
        (run.model_dir / "config.json").write_text("{}")
        upload = zip_of(tmp_path / "site_b.zip", {"site_b/cat/1.png": png_bytes(1), "site_b/dog/2.png": png_bytes(2)})
        for call in (lab.validate, lab.score_batch):
            with pytest.raises(UserError, match="There is no run"):
                call(bob, run.id, upload, "site_b.zip")
        empty = zip_of(tmp_path / "notes.zip", {"x/readme.md": b"hi", "x/more.md": b"ho"})
        with pytest.raises(UserError, match="no images"):
            lab.score_batch(alice, run.id, empty, "notes.zip")
        with pytest.raises(UserError, match="Could not find"):
            lab.validate(alice, run.id, tmp_path / "gone.zip", "gone.zip")
        assert lab.inference.worker_pids() == []   # refused in the web process: no model was loaded for them
    finally:
        lab.close()
