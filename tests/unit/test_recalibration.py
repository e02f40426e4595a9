"""Recalibration for a new site (issue 34, item 2), on synthetic probabilities with a known temperature shift (no
model, no training): a model calibrated at its own site answers 3x too sharply at the new one; refitting on one
random stratified half lowers the calibration error on the other half, never fitting on what it reports on."""
from __future__ import annotations

import numpy as np
import pytest

from tl_ui import trust
from tl_ui.engine.evaluation.recalibration import RecalibrationError, recalibrate, stratified_halves

SHIFT = 3.0   # the new site's logits are this many times larger than calibrated ones


def _site(n: int = 600, k: int = 3, seed: int = 0):
    """Labels drawn from softmax(z) (calibrated at temperature 1); the model answers softmax(SHIFT * z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, size=(n, k))
    z[np.arange(n), rng.integers(0, k, n)] += 1.5
    calibrated = trust.softmax(z)
    targets = np.array([rng.choice(k, p=row) for row in calibrated])
    return trust.softmax(SHIFT * z), targets, [f"c{i}" for i in range(k)]


def _qhat(probs, targets, level=0.9):
    return trust.conformal_threshold(probs, targets, level)


def test_recalibration_lowers_ece_on_the_held_back_half_of_a_known_temperature_shift():
    probs, targets, classes = _site()
    names = [f"img{i}.png" for i in range(len(targets))]
    conformal = {"thresholds": {"0.9": 0.5}, "default_level": 0.9}   # the parent's sets: built for sharper answers
    done = recalibrate(probs, targets, classes, names, conformal=conformal, operating_point=None, set_level=0.9,
                       seed=7)
    fit, held = done.fit_rows, done.report_rows
    assert not set(fit) & set(held) and len(fit) + len(held) == len(targets)
    assert abs(len(fit) - len(held)) <= 1
    # stratified: each class's share is the same in both halves (within one example)
    for c in range(len(classes)):
        assert abs((targets[fit] == c).sum() - (targets[held] == c).sum()) <= 1
    # the refit temperature undoes the shift (the bounded fit may soften freely)
    assert done.calibration["temperature"] == pytest.approx(SHIFT, rel=0.25)
    before, after = done.block["before"], done.block["after"]
    # the same held-back examples before and after: what the parent's calibration gives there
    assert before["ece"] == pytest.approx(trust.expected_calibration_error(probs[held], targets[held]), abs=1e-4)
    assert after["ece"] < before["ece"] / 2
    assert after["accuracy"] == before["accuracy"]    # a temperature never changes the top class
    assert after["coverage"] >= 0.85 > before["coverage"]   # sets rebuilt at the site cover as promised there
    assert done.metrics["n_val"] == len(held) and done.metrics["evaluation"]["n_chosen"] == len(fit)
    assert done.metrics["calibration"]["ece_after"] == pytest.approx(after["ece"], abs=1e-4)
    assert done.block["sentence"].startswith(f"Refitted on {len(fit)} of your {len(targets)} new examples; on the "
                                             f"other {len(held)} the calibration error fell from")


def test_recalibration_is_seeded_and_refuses_too_few_examples():
    probs, targets, classes = _site(n=200, seed=1)
    names = [str(i) for i in range(len(targets))]
    a = stratified_halves(targets, 3)
    b = stratified_halves(targets, 3)
    c = stratified_halves(targets, 4)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    with pytest.raises(RecalibrationError, match="at least 20"):
        recalibrate(probs[:12], targets[:12], classes, names[:12], conformal=None, operating_point=None,
                    set_level=0.9, seed=0)


def test_recalibration_refits_the_operating_point_with_the_runs_rule_on_the_fit_half_only():
    probs, targets, classes = _site(n=400, k=2, seed=2)
    names = [str(i) for i in range(len(targets))]
    point = {"positive_class": "c1", "threshold": 0.5, "rule": "sensitivity", "target": 0.9, "chosen_on": "validation"}
    done = recalibrate(probs, targets, classes, names, conformal=None, operating_point=point, set_level=0.9, seed=0)
    from tl_ui.trust.operating_point import choose_threshold

    fit = done.fit_rows
    after = trust.softmax(np.log(probs), done.calibration["temperature"])
    expected = choose_threshold(after[fit, 1], targets[fit] == 1, "sensitivity", 0.9)["threshold"]
    assert done.operating_point["threshold"] == pytest.approx(expected)
    assert done.operating_point["chosen_on"] == "site" and done.operating_point["rule"] == "sensitivity"
    assert done.block["before"]["threshold"] == 0.5 and done.block["after"]["threshold"] == pytest.approx(expected)
    assert done.metrics["operating_point"]["n_reported"] == len(done.report_rows)
    assert done.block["after"]["sensitivity"] is not None and "threshold for 'c1' moved" in done.block["sentence"]


def test_a_linked_version_shares_the_weights_and_has_its_own_manifest_config_and_card(tmp_path):
    import json

    from tl_ui.core.runfolder import RunFolder

    parent = RunFolder(tmp_path / "runs" / "parent").create()
    parent.model_dir.mkdir()
    (parent.model_dir / "model.safetensors").write_bytes(b"weights")
    (parent.model_dir / "config.json").write_text(json.dumps({"decision_threshold": 0.5, "label_names": ["a", "b"]}))
    (parent.model_dir / "README.md").write_text("# card\n")
    manifest = {"format": "timm", "modality": "image", "classes": ["a", "b"], "temperature": 1.3}
    (parent.model_dir / "transfer_lab.json").write_text(json.dumps(manifest))
    parent.run_json.write_text(json.dumps({"model_id": "m", "data_path": "../data.zip", "extra": {"probe_head": "x"}}))
    new = RunFolder(tmp_path / "runs" / "child")
    new.write_version_config(parent, {"recalibrated_from": "parent", "site": "B"})
    new.write_linked_model(parent, {**manifest, "site_temperature": 2.0, "parent_run_id": "parent", "site": "B"},
                           config_updates={"decision_threshold": 0.3, "not_there": 1}, card_addendum="## Recalibrated")
    assert (new.model_dir / "model.safetensors").stat().st_ino == (parent.model_dir / "model.safetensors").stat().st_ino
    assert json.loads((new.model_dir / "config.json").read_text()) == {"decision_threshold": 0.3, "label_names": ["a", "b"]}
    assert json.loads((parent.model_dir / "config.json").read_text())["decision_threshold"] == 0.5   # the parent's own
    assert new.manifest()["site_temperature"] == 2.0 and "site_temperature" not in parent.manifest()
    assert (new.model_dir / "README.md").read_text().endswith("## Recalibrated\n")
    assert (parent.model_dir / "README.md").read_text() == "# card\n"
    config = new.config()
    assert config["extra"] == {"probe_head": "x", "recalibrated_from": "parent", "site": "B"}
    assert config["data_path"] == str((tmp_path / "runs" / "data.zip").resolve())   # still the parent's data
    assert not list(new.path.glob(".model.partial-*"))
    with pytest.raises(Exception):   # a manifest that does not fit its contract writes nothing
        RunFolder(tmp_path / "runs" / "bad").write_linked_model(parent, {"format": "timm"})
    assert not (tmp_path / "runs" / "bad" / "model").exists()


def test_the_page_shows_before_and_after_with_intervals_and_the_new_run():
    from tl_ui.ui.validate_view import recalibration_html, recalibration_md

    probs, targets, classes = _site(n=200, k=2, seed=4)
    point = {"positive_class": "c1", "threshold": 0.5, "rule": "youden", "target": None}
    done = recalibrate(probs, targets, classes, [str(i) for i in range(200)], conformal={"thresholds": {"0.9": 0.4}},
                       operating_point=point, set_level=0.9, seed=0)
    answer = {"run_id": "20261207-000000-abcdef", "parent_run_id": "20261206-000000-fedcba", "site": "Site <B>",
              "recalibration": done.block}
    table = recalibration_html(answer)
    assert "Before (as trained)" in table and "After recalibration" in table and "<caption>" in table
    assert f"{done.block['after']['ece']:.2f} ({done.block['after']['ece_ci'][0]:.2f}" in table
    assert "Specificity at the threshold" in table and "Prediction sets hold the right class (90% sets)" in table
    text = recalibration_md(answer)
    assert text.startswith("Refitted on 100 of your 200 new examples") and "Site &lt;B&gt;" in text
