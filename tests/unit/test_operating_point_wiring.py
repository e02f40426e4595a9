"""Issue 33's wiring, without training: the run settings (positive class, rule, prevalence) through the one
translator and the CLI's flags; the single-label task's metrics block on synthetic scores (threshold
chosen on the choose examples only, numbers on the report examples, a replay gives the same); what the
export carries (manifest, timm / transformers config, card) and the Predictor's `decision`."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tl_ui.contracts import ExportManifest, RunMetrics
from tl_ui.core.config import ConfigError, RunConfig

CLASSES = ["healthy", "disease"]


# -- the settings ------------------------------------------------------------------------------------

def test_options_take_positive_class_rule_and_prevalence():
    config = RunConfig.from_options({"positive_class": "disease", "operating_point": "sensitivity:0.95",
                                     "prevalence": "0.05"})
    assert config.positive_class == "disease"
    assert config.operating_rule == ("sensitivity", 0.95)
    assert config.prevalence == pytest.approx(0.05)
    assert RunConfig.from_json(config.to_json()).operating_rule == ("sensitivity", 0.95)   # run.json replays it


def test_positive_class_alone_means_youden_and_nothing_means_no_operating_point():
    assert RunConfig.from_options({"positive_class": "disease"}).operating_rule == ("youden", None)
    assert RunConfig.from_options({}).operating_rule == (None, None)
    assert RunConfig.from_options({"positive_class": "  "}).positive_class is None   # an empty form field


@pytest.mark.parametrize("options, words", [
    ({"positive_class": "disease", "operating_point": "sensitivity"}, "needs a value between 0 and 1"),
    ({"positive_class": "disease", "operating_point": "recall:0.9"}, "unknown operating-point rule"),
    ({"positive_class": "disease", "operating_point": "sensitivity:95"}, "at most 1"),
    ({"positive_class": "disease", "operating_point": "threshold:1.5"}, "probability between 0 and 1"),
    ({"operating_point": "youden"}, "name the positive class"),
    ({"positive_class": "disease", "prevalence": 1.2}, "strictly between 0 and 1"),
])
def test_bad_operating_point_settings_say_what_to_write(options, words):
    with pytest.raises(ConfigError, match=words):
        RunConfig.from_options(options)


def test_positive_class_must_be_a_class_of_single_label_data():
    config = RunConfig.from_options({"positive_class": "tumour"})
    with pytest.raises(ConfigError, match="not one of this data's classes: healthy, disease"):
        config.check_positive_class(CLASSES)
    with pytest.raises(ConfigError, match="multi-label"):
        RunConfig.from_options({"positive_class": "a"}).check_positive_class(["a", "b"], multilabel=True)
    RunConfig.from_options({"positive_class": "disease"}).check_positive_class(CLASSES)


def test_train_flags_come_from_the_fields():
    import argparse

    from tl_ui.cli.train import add_train_parser

    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--out", "x", "--positive-class", "disease", "--operating-point",
                              "specificity:0.9", "--prevalence", "0.1"])
    assert (args.positive_class, args.operating_point, args.prevalence) == ("disease", "specificity:0.9", 0.1)


# -- the metrics block -------------------------------------------------------------------------------

def _scored(n: int, rng, separation: float = 1.5):
    from tl_ui.engine.tasks.base import Scored

    targets = rng.integers(0, 2, n)
    logits = rng.normal(size=(n, 2))
    logits[np.arange(n), targets] += separation
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return Scored(log_probs, targets, [f"x{i}" for i in range(n)])


def _evidence(choose, report, **options):
    from tl_ui.engine.tasks.base import Evidence

    config = RunConfig.from_options(options)
    return Evidence(choose=choose, report=report, chosen={"calibration": {"temperature": 1.2}}, classes=CLASSES,
                    config=config, modality="image")


def _task():
    from tl_ui.engine.tasks.single_label import SingleLabelTask

    return SingleLabelTask(CLASSES)


def test_block_chooses_on_choose_and_reports_on_report():
    rng = np.random.default_rng(0)
    choose, report, other_report = _scored(120, rng), _scored(150, rng), _scored(90, rng)
    task = _task()
    options = {"positive_class": "disease", "operating_point": "sensitivity:0.9", "prevalence": 0.05, "seed": 3}
    block = task.operating_point(_evidence(choose, report, **options))
    assert set(block) == {"roc", "operating_point", "decision_curve"}
    op = block["operating_point"]
    # the threshold is the choose examples' (trust.operating_point.choose_threshold on them alone) ...
    from tl_ui.trust import softmax
    from tl_ui.trust.operating_point import choose_threshold, report_at_threshold

    choose_p = softmax(choose.outputs, 1.2)[:, 1]
    assert op["threshold"] == choose_threshold(choose_p, choose.targets == 1, "sensitivity", 0.9)["threshold"]
    # ... and does not move when the report examples change; the numbers are the report examples'
    assert task.operating_point(_evidence(choose, other_report, **options))["operating_point"]["threshold"] == \
        op["threshold"]
    at = report_at_threshold(softmax(report.outputs, 1.2)[:, 1], report.targets == 1, op["threshold"])
    assert (op["tp"], op["fp"], op["fn"], op["tn"]) == (at["tp"], at["fp"], at["fn"], at["tn"])
    assert op["n_reported"] == 150 and op["n_chosen"] == 120 and op["chosen_on"] == "validation"
    assert op["at_prevalence"]["prevalence"] == 0.05
    assert block["roc"]["positive_class"] == "disease" and "one_vs_rest" not in block["roc"]   # K = 2
    assert block["decision_curve"]["positive_class"] == "disease"
    # a replay (same settings, same scores) writes the same blocks
    assert task.operating_point(_evidence(choose, report, **options)) == block
    RunMetrics.model_validate({"accuracy": 0.5, "macro_f1": 0.5, "n_val": 150, "classes": CLASSES, "per_class": {},
                               "mistakes": [], **block})


def test_without_positive_class_only_every_class_against_the_rest():
    rng = np.random.default_rng(1)
    block = _task().operating_point(_evidence(_scored(60, rng), _scored(60, rng)))
    assert set(block) == {"roc"}
    assert set(block["roc"]["one_vs_rest"]) == set(CLASSES) and block["roc"]["auroc"] is None


def test_multilabel_block_per_label():
    from tl_ui.engine.tasks.base import Evidence, Scored
    from tl_ui.engine.tasks.multi_label import MultiLabelTask

    rng = np.random.default_rng(2)
    targets = rng.integers(0, 2, (80, 3))
    logits = rng.normal(size=(80, 3)) + 2 * (targets - 0.5)
    report = Scored(logits, targets, [str(i) for i in range(80)])
    evidence = Evidence(choose=report, report=report, chosen={"thresholds": [0.4, 0.5, 0.6],
                                                              "threshold_choice": ["best F1"] * 3},
                        classes=["a", "b", "c"], config=RunConfig(), modality="text")
    block = MultiLabelTask(["a", "b", "c"]).label_operating_points(evidence)["label_operating_points"]
    assert set(block) == {"a", "b", "c"}
    assert block["c"]["operating_point"]["threshold"] == 0.6 and block["c"]["roc"]["auroc"] > 0.5
    RunMetrics.model_validate({"accuracy": 0.5, "macro_f1": 0.5, "n_val": 80, "classes": [], "per_class": {},
                               "mistakes": [], "label_operating_points": block})


# -- the export and the answers ----------------------------------------------------------------------

def _metrics():
    rng = np.random.default_rng(4)
    return _task().operating_point(_evidence(_scored(100, rng), _scored(100, rng), positive_class="disease",
                                             operating_point="youden"))


def test_manifest_and_timm_config_carry_the_threshold():
    metrics, task = _metrics(), _task()
    threshold = metrics["operating_point"]["threshold"]
    added = task.manifest_additions({}, metrics)
    assert added["operating_point"] == {"positive_class": "disease", "threshold": threshold, "rule": "youden",
                                        "target": None, "chosen_on": "validation"}
    manifest = ExportManifest.model_validate({"format": "timm", "modality": "image", "classes": CLASSES, **added})
    assert manifest.to_dict()["operating_point"]["threshold"] == threshold
    assert task.timm_config({}, metrics) == {"decision_threshold": threshold, "positive_label": "disease"}
    assert task.manifest_additions({}, {}) == {} and task.timm_config({}, {}) == {}


def test_transformers_config_json_gets_decision_threshold(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    metrics = _metrics()
    model = BertForSequenceClassification(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=1, intermediate_size=8, num_labels=2))
    _task().mark_model(model, {}, metrics)
    model.save_pretrained(str(tmp_path))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["decision_threshold"] == metrics["operating_point"]["threshold"]
    assert saved["positive_label"] == "disease"


def test_answers_decide_at_the_saved_threshold():
    task = _task()
    manifest = {"operating_point": {"positive_class": "disease", "threshold": 0.3, "rule": "threshold"}}
    probs = np.array([[0.8, 0.2], [0.7, 0.3], [0.1, 0.9]])
    answers = task.answers(probs, manifest, None)
    assert [a["decision"] for a in answers] == ["negative", "positive", "positive"]   # >= threshold flags
    assert answers[0]["threshold"] == 0.3 and answers[0]["positive_class"] == "disease"
    assert "below the saved threshold 0.3" in answers[0]["decision_sentence"]
    assert "decision" not in task.answers(probs, {}, None)[0]   # an export without an operating point


def test_model_card_states_the_operating_point():
    from tl_ui.engine.export.card import _operating_point_lines

    metrics = _metrics()
    op = metrics["operating_point"]
    lines = "\n".join(_operating_point_lines(metrics))
    assert f"at least **{op['threshold']:.4g}**" in lines
    assert f"sensitivity {op['sensitivity']:.3f} [{op['sensitivity_ci'][0]:.3f}, {op['sensitivity_ci'][1]:.3f}]" in lines
    assert "Area under the ROC curve for disease" in lines


# -- the page's panel (no model: metrics.json and the stored test probabilities) --------------------------

def _panel_inputs(**options):
    rng = np.random.default_rng(5)
    choose, report = _scored(100, rng), _scored(120, rng)
    metrics = {"classes": CLASSES, **_task().operating_point(_evidence(choose, report, **options))}
    from tl_ui.trust import softmax

    scores = (CLASSES, [CLASSES[t] for t in report.targets], softmax(report.outputs, 1.2))
    return metrics, scores


def test_panel_shows_the_saved_point_and_the_slider_recomputes_from_stored_probabilities():
    from tl_ui.ui import operating_point_view as opv

    metrics, scores = _panel_inputs(positive_class="disease", operating_point="sensitivity:0.9")
    values = opv.panel_values(metrics, {"prevalence": 0.05}, scores)
    op = metrics["operating_point"]
    assert values["op_panel"]["visible"] is True and values["op_class"]["value"] == "disease"
    assert values["op_slider"]["value"] == round(op["threshold"], 3)
    assert f"{op['threshold']:.3f}" in values["op_intro"] and "validation" in values["op_intro"]
    for key in ("op_curves", "op_decision"):
        assert values[key].count("role=\"img\"") >= 1 and "<table>" in values[key]   # plot + text alternative
    slid = opv.slide_values(metrics, {"prevalence": 0.05}, scores, "disease", 0.9)["op_readout"]
    flagged = int((scores[2][:, 1] >= 0.9).sum())
    assert f"it would also flag" in slid and "optimistic" in slid and "Bayes" in slid
    tp = sum(1 for t, p in zip(scores[1], scores[2][:, 1]) if t == "disease" and p >= 0.9)
    assert f"finds {tp} of " in slid and flagged >= tp


def test_panel_without_positive_class_and_for_multilabel():
    from tl_ui.ui import operating_point_view as opv

    metrics, scores = _panel_inputs()
    values = opv.panel_values(metrics, {}, scores)
    assert "No operating point is saved" in values["op_intro"] and "name one in step 3" in values["op_decision"]
    assert "healthy against the rest" in opv.slide_values(metrics, {}, scores, "healthy", 0.5)["op_curves"]
    assert opv.panel_values({"multilabel": {}, "roc": None}, {}, None)["op_panel"]["visible"] is False


def test_form_drops_rule_without_positive_class():
    from tl_ui.ui.strategy import NO_POSITIVE, operating_point_options

    assert operating_point_options({"positive_class": NO_POSITIVE, "operating_point": "youden", "prevalence": 0}) == \
        {"positive_class": None, "operating_point": None, "prevalence": None}
    assert RunConfig.from_options(operating_point_options({"positive_class": "disease", "operating_point": "youden",
                                                           "prevalence": 0})).prevalence is None
