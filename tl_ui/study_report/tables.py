"""The report's tables, each cell a quote of a run's file (or a name, or plain words).

`fill(report)` adds `report.tables[key]` for every block the run has; a table whose block is
missing is simply not made (its section then says "not measured in this run").
"""
from __future__ import annotations

from typing import Optional

from tl_ui.core.config import RunConfig
from tl_ui.study_report.context import Estimate, Help, Interval, Name, Part, RunReport, Table
from tl_ui.study_report.quote import Quoter, pointer

# A confusion matrix wider than this is left to metrics.json (a page cannot hold it readably).
MAX_CONFUSION_CLASSES = 12
# Settings shown elsewhere in the report (data file, limits, bookkeeping) are not repeated.
SETTINGS_SHOWN_ELSEWHERE = ("data_path", "data_sha256", "limits", "extra")
# Points of a curve listed in the table beside its figure.
CURVE_TABLE_POINTS = 9
# Threshold probabilities listed beside the decision curve.
DECISION_TABLE_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6)


def estimate(quoter: Quoter, ptr: str, ci_ptr: Optional[str], style: str = "percent") -> Estimate:
    pair = quoter.interval(ci_ptr, style) if ci_ptr else None
    return Estimate(quoter.q(ptr, style), Interval(*pair) if pair else None)


def fill(report: RunReport) -> None:
    m = report.m
    builders = [
        ("split", _split), ("settings", _settings), ("data_classes", _data_classes),
        ("data_groups", _data_groups),
    ]
    if report.multilabel:
        builders += [("ml_overall", _ml_overall), ("ml_labels", _ml_labels), ("ml_counts", _ml_counts)]
    else:
        builders += [("overall", _overall), ("per_class", _per_class), ("confusion", _confusion)]
    for block, builder in (("calibration", _reliability), ("conformal", _conformal),
                           ("cross_validation", _cross_validation), ("groups", _groups),
                           ("scratch", _scratch), ("roc", _roc_areas), ("roc", _roc_points), ("roc", _pr_points),
                           ("operating_point", _operating_point), ("decision_curve", _decision),
                           ("familiarity", _familiarity), ("probe_fit", _probe_fit)):
        if report.has(block):
            builders.append((builder.__name__.lstrip("_"), builder))
    for key, builder in builders:
        table = builder(report)
        if table is not None:
            table.id = table.id or f"table-{key.replace('_', '-')}"
            report.tables[key] = table
    report.quotes["training"] = _training_rows(m)
    if m.has("/roc/auroc"):
        report.quotes["auroc"] = estimate(m, "/roc/auroc", "/roc/auroc_ci", "decimal")


# -- data and split -----------------------------------------------------------------------------

def _split(report: RunReport) -> Table:
    m = report.m
    chosen: list[Part] = [m.said(pointer("evaluation", "chosen", i)) for i, _ in
                          enumerate(m.get("/evaluation/chosen") or [])]
    used_for: list[Part] = []
    for i, part in enumerate(chosen):
        if i:
            used_for.append("; ")
        used_for.append(part)
    rows = [
        ["Training", m.q("/n_train", "count"), "fitting the model's weights"],
        ["Validation", m.q("/evaluation/n_chosen", "count"), used_for or "choosing, never reporting"],
        ["Test", m.q("/n_val", "count"), "every number in this report, and nothing else"],
    ]
    return Table("Examples in each role (from metrics.json)", ["Role", "Examples", "Used for"], rows,
                 numeric=False)


def _settings(report: RunReport) -> Optional[Table]:
    r = report.r
    if not r.document:
        return None
    rows = []
    for name, info in RunConfig.model_fields.items():
        if name in SETTINGS_SHOWN_ELSEWHERE:
            continue
        value = r.get(pointer(name))
        shown: Part = r.q(pointer(name), "setting") if value is not None else "not set (the default)"
        rows.append([Name(name), shown, Help(info.description or "")])
    return Table("Every setting of the run (run.json)", ["Setting", "Value", "What it means"], rows,
                 numeric=False)


def _data_classes(report: RunReport) -> Optional[Table]:
    d, m = report.d, report.m
    names = list((m.get("/per_class") or {}).keys())
    in_file = d.get("/classes") or {}
    rows = []
    for name in names:
        whole: Part = d.q(pointer("classes", name), "count") if name in in_file else "not read"
        rows.append([Name(name), whole, m.q(pointer("per_class", name, "support"), "count")])
    header = ["Label" if report.multilabel else "Class",
              "Examples in the data file" if not report.multilabel else "Examples with it in the data file",
              "Test examples" if not report.multilabel else "Test examples with it"]
    word = "label" if report.multilabel else "class"
    return Table(f"Examples per {word}: in the whole data file and among the test examples", header, rows)


def _data_groups(report: RunReport) -> Optional[Table]:
    d = report.d
    groups = d.get("/groups")
    if not groups:
        return None
    by_group = report.m.get("/groups/by_group") or {}
    rows = [[Name(g), d.q(pointer("groups", g), "count"),
             report.m.q(pointer("groups", "by_group", g, "n"), "count") if g in by_group else "none"]
            for g in groups]
    return Table("Examples per group", ["Group", "Examples in the data file", "Test examples"], rows)


# -- discrimination --------------------------------------------------------------------------------

def _overall(report: RunReport) -> Table:
    m = report.m
    rows: list[list[Part]] = [
        ["Accuracy", estimate(m, "/accuracy", "/accuracy_ci"), m.said("/accuracy_sentence") or ""],
        ["Macro-F1", estimate(m, "/macro_f1", "/macro_f1_ci"), m.said("/macro_f1_sentence")
         or "the F1 score (balance of precision and recall) averaged over the classes, each class counting the same"],
    ]
    if m.has("/majority_baseline_accuracy"):
        rows.append(["Always guessing the largest class", Estimate(m.q("/majority_baseline_accuracy", "percent")),
                     "what a model that learned nothing would score"])
    return Table("Overall, on the test examples", ["Measure", "Value (interval)", "In words"], rows,
                 numeric=False)


def _per_class(report: RunReport) -> Table:
    m = report.m
    rows = []
    for name in (m.get("/per_class") or {}):
        base = ("per_class", name)
        rows.append([Name(name), m.q(pointer(*base, "support"), "count"),
                     estimate(m, pointer(*base, "precision"), pointer(*base, "precision_ci")),
                     estimate(m, pointer(*base, "recall"), pointer(*base, "recall_ci")),
                     m.q(pointer(*base, "f1"), "percent")])
    return Table("Per class, on the test examples",
                 ["Class", "Test examples", "Precision (interval)", "Recall (interval)", "F1"], rows)


def _confusion(report: RunReport) -> Optional[Table]:
    m = report.m
    matrix = m.get("/confusion_matrix")
    classes = m.get("/classes") or []
    if not matrix or len(classes) > MAX_CONFUSION_CLASSES:
        return None
    rows = [[Name(true)] + [m.q(pointer("confusion_matrix", i, j), "count") for j in range(len(classes))]
            for i, true in enumerate(classes)]
    return Table("Confusion matrix: each row is the true class, each column the class the model answered",
                 ["True class"] + [Name(c) for c in classes], rows, id="table-confusion")


# -- multi-label -------------------------------------------------------------------------------------

def _ml_overall(report: RunReport) -> Table:
    m = report.m
    rows = [
        ["Micro-F1", estimate(m, "/multilabel/micro_f1", "/multilabel/micro_f1_ci"),
         m.said("/multilabel/sentences/micro_f1") or ""],
        ["Macro-F1", estimate(m, "/multilabel/macro_f1", "/multilabel/macro_f1_ci"),
         m.said("/multilabel/sentences/macro_f1") or ""],
        ["Subset accuracy (all labels right)", estimate(m, "/multilabel/subset_accuracy",
                                                        "/multilabel/subset_accuracy_ci"),
         m.said("/multilabel/sentences/subset_accuracy") or ""],
        ["Hamming loss (share of wrong label decisions)", estimate(m, "/multilabel/hamming_loss",
                                                                   "/multilabel/hamming_loss_ci"),
         m.said("/multilabel/sentences/hamming_loss") or ""],
    ]
    if m.has("/multilabel/mean_average_precision"):
        rows.append(["Mean average precision (ranking, no threshold)",
                     estimate(m, "/multilabel/mean_average_precision", "/multilabel/mean_average_precision_ci"),
                     "how well each label's score ranks the examples that have it above those that do not"])
    return Table("Overall, on the test examples", ["Measure", "Value (interval)", "In words"], rows,
                 numeric=False)


def _ml_labels(report: RunReport) -> Table:
    m = report.m
    rows = []
    for name in (m.get("/multilabel/per_label") or {}):
        base = ("multilabel", "per_label", name)
        rows.append([Name(name), m.q(pointer(*base, "support"), "count"),
                     m.q(pointer(*base, "threshold"), "decimal"),
                     estimate(m, pointer(*base, "precision"), pointer(*base, "precision_ci")),
                     estimate(m, pointer(*base, "recall"), pointer(*base, "recall_ci")),
                     m.q(pointer(*base, "f1"), "percent"),
                     m.q(pointer(*base, "average_precision"), "decimal")])
    return Table("Per label, on the test examples, at each label's threshold",
                 ["Label", "Test examples with it", "Threshold", "Precision (interval)",
                  "Recall (interval)", "F1", "Average precision"], rows)


def _ml_counts(report: RunReport) -> Table:
    m = report.m
    rows = []
    for name in (m.get("/multilabel/per_label") or {}):
        base = ("multilabel", "per_label", name)
        rows.append([Name(name)] + [m.q(pointer(*base, k), "count") for k in ("tp", "fp", "fn", "tn")]
                    + [m.said(pointer(*base, "threshold_choice")) or "not recorded"])
    return Table("Per label: the test examples' decisions at the threshold, and how the threshold was chosen",
                 ["Label", "Found (TP)", "Flagged wrongly (FP)", "Missed (FN)", "Cleared rightly (TN)",
                  "How the threshold was chosen (on validation)"], rows)


# -- trust ----------------------------------------------------------------------------------------------

def _reliability(report: RunReport) -> Table:
    """One row per confidence bin: after calibration, and before it beside (the same bins of the
    probabilities before temperature scaling); one set only when the two are the same (temperature 1)."""
    m = report.m
    after = m.get("/calibration/bins") or []
    before = m.get("/calibration/bins_before") or []
    same = after == before
    keyed: dict[tuple, dict[str, int]] = {}
    for key, bins in (("bins", after), ("bins_before", [] if same else before)):
        for i, b in enumerate(bins):
            keyed.setdefault((b["low"], b["high"]), {})[key] = i
    rows = []
    for (low, high), where in sorted(keyed.items()):
        first = "bins" if "bins" in where else "bins_before"
        edge = ("calibration", first, where[first])
        row: list[Part] = [Interval(m.q(pointer(*edge, "low"), "percent"), m.q(pointer(*edge, "high"), "percent"))]
        for key in ("bins",) if same else ("bins", "bins_before"):
            if key in where:
                base = ("calibration", key, where[key])
                row += [m.q(pointer(*base, "count"), "count"), m.q(pointer(*base, "confidence"), "percent"),
                        m.q(pointer(*base, "accuracy"), "percent")]
            else:
                row += ["none", "", ""]
        rows.append(row)
    if same:
        header = ["Confidence range", "Test examples", "Mean confidence", "Accuracy"]
        caption = ("Reliability diagram's bins (identical before and after calibration: the temperature is one): "
                   "how sure the model said it was, and how often it was right")
    else:
        header = ["Confidence range", "Examples (after)", "Mean confidence (after)", "Accuracy (after)",
                  "Examples (before)", "Mean confidence (before)", "Accuracy (before)"]
        caption = "Reliability diagram's bins after and before calibration: how sure the model was, how often right"
    return Table(caption, header, rows, row_headers=True)


def _conformal(report: RunReport) -> Table:
    m = report.m
    rows: list[list[Part]] = [
        ["Level asked for", m.q("/conformal/level", "level")],
        ["Validation examples that set the threshold", m.q("/conformal/n_calibration", "count")],
    ]
    if m.has("/conformal/coverage"):
        rows += [["How often the set held the right class (test)",
                  estimate(m, "/conformal/coverage", "/conformal/coverage_ci")],
                 ["Classes in a set, on average", m.q("/conformal/mean_set_size", "decimal")],
                 ["Score threshold", m.q("/conformal/threshold", "decimal")]]
    return Table("Prediction sets", ["Measure", "Value"], rows)


def _cross_validation(report: RunReport) -> Table:
    m = report.m
    rows = [["Accuracy", estimate(m, "/cross_validation/accuracy", "/cross_validation/accuracy_ci")],
            ["Macro-F1", estimate(m, "/cross_validation/macro_f1", "/cross_validation/macro_f1_ci")],
            ["Folds", m.q("/cross_validation/folds", "count")],
            ["Repeats", m.q("/cross_validation/repeats", "count")]]
    if m.has("/cross_validation/n"):
        rows.append(["Examples the folds tested", m.q("/cross_validation/n", "count")])
    rows.append(["Method", m.said("/cross_validation/method") or "not recorded"])
    return Table("Cross-validated estimate (repeated stratified folds of the fixed probe recipe)",
                 ["Measure", "Value (interval)"], rows, numeric=False)


def _groups(report: RunReport) -> Table:
    m = report.m
    rows = []
    for name, scores in (m.get("/groups/by_group") or {}).items():
        base = ("groups", "by_group", name)
        rows.append([Name(name), m.q(pointer(*base, "n"), "count"),
                     estimate(m, pointer(*base, "accuracy"), pointer(*base, "accuracy_ci")),
                     m.q(pointer(*base, "macro_f1"), "percent"),
                     "yes: very uncertain" if scores.get("few_examples") else "no"])
    return Table("Per group, on the test examples",
                 ["Group", "Test examples", "Accuracy (interval)", "Macro-F1", "Few examples"], rows)


def _scratch(report: RunReport) -> Table:
    m = report.m
    rows: list[list[Part]] = [
        ["Pretrained (this run)", estimate(m, "/accuracy", "/accuracy_ci")],
        ["Same recipe from random weights", estimate(m, "/scratch_accuracy", "/scratch_accuracy_ci")],
    ]
    if m.has("/pretraining_gain/accuracy"):
        rows.append(["Difference in percentage points (paired, same test examples)",
                     estimate(m, "/pretraining_gain/accuracy", "/pretraining_gain/ci", "signed_points")])
    return Table("What pretraining bought: accuracy on the same test examples",
                 ["Model", "Accuracy (interval)"], rows)


def _roc_areas(report: RunReport) -> Table:
    m = report.m
    rows = []
    positive = m.get("/roc/positive_class")
    if positive is not None and m.get("/roc/auroc") is not None:
        rows.append([Name(positive), m.q("/roc/n_positive", "count"), m.q("/roc/n_negative", "count"),
                     estimate(m, "/roc/auroc", "/roc/auroc_ci", "decimal"),
                     estimate(m, "/roc/auprc", "/roc/auprc_ci", "decimal")])
    for name, block in (m.get("/roc/one_vs_rest") or {}).items():
        if name == positive:
            continue
        base = ("roc", "one_vs_rest", name)
        if block.get("auroc") is None:
            rows.append([Name(name), m.q(pointer(*base, "n_positive"), "count"),
                         m.q(pointer(*base, "n_negative"), "count"), "not measurable", "not measurable"])
            continue
        rows.append([Name(name), m.q(pointer(*base, "n_positive"), "count"), m.q(pointer(*base, "n_negative"), "count"),
                     estimate(m, pointer(*base, "auroc"), pointer(*base, "auroc_ci"), "decimal"),
                     estimate(m, pointer(*base, "auprc"), pointer(*base, "auprc_ci"), "decimal")])
    return Table("Areas under the ROC and precision-recall curves (each class against the rest)",
                 ["Class", "Test examples of it", "Other test examples", "AUROC (interval)",
                  "AUPRC (interval)"], rows)


def _spread(count: int, k: int) -> list[int]:
    if count <= k:
        return list(range(count))
    return sorted({round(i * (count - 1) / (k - 1)) for i in range(k)})


def _roc_points(report: RunReport) -> Optional[Table]:
    m = report.m
    fpr = m.get("/roc/curve/fpr") or []
    if not fpr:
        return None
    rows = []
    for i in _spread(len(fpr), CURVE_TABLE_POINTS):
        threshold = m.get(pointer("roc", "curve", "thresholds", i))
        rows.append([m.q(pointer("roc", "curve", "thresholds", i), "decimal") if threshold is not None
                     else "above every score", m.q(pointer("roc", "curve", "fpr", i), "percent"),
                     m.q(pointer("roc", "curve", "tpr", i), "percent")])
    return Table("Points of the ROC curve (test examples)",
                 ["Threshold", "False-positive rate", "True-positive rate (sensitivity)"], rows)


def _pr_points(report: RunReport) -> Optional[Table]:
    m = report.m
    recall = m.get("/roc/pr_curve/recall") or []
    if not recall:
        return None
    rows = []
    for i in _spread(len(recall), CURVE_TABLE_POINTS):
        threshold = m.get(pointer("roc", "pr_curve", "thresholds", i))
        rows.append([m.q(pointer("roc", "pr_curve", "thresholds", i), "decimal") if threshold is not None
                     else "above every score", m.q(pointer("roc", "pr_curve", "recall", i), "percent"),
                     m.q(pointer("roc", "pr_curve", "precision", i), "percent")])
    return Table("Points of the precision-recall curve (test examples)", ["Threshold", "Recall", "Precision"], rows)


def _operating_point(report: RunReport) -> Table:
    m = report.m
    op = ("operating_point",)
    rows: list[list[Part]] = [
        ["Condition to find (positive class)", Name(str(m.get("/operating_point/positive_class")))],
        ["How the threshold was chosen", Name(str(m.get("/operating_point/rule")))],
    ]
    if m.has("/operating_point/target"):
        rows.append(["Target", m.q("/operating_point/target", "level")])
    rows += [
        ["Threshold (probability of the positive class)", m.q("/operating_point/threshold", "decimal")],
        ["Validation examples it was chosen on", m.q("/operating_point/n_chosen", "count")],
        ["Sensitivity (test)", estimate(m, pointer(*op, "sensitivity"), pointer(*op, "sensitivity_ci"))],
        ["Specificity (test)", estimate(m, pointer(*op, "specificity"), pointer(*op, "specificity_ci"))],
        ["Positive predictive value (test)", estimate(m, pointer(*op, "ppv"), pointer(*op, "ppv_ci"))],
        ["Negative predictive value (test)", estimate(m, pointer(*op, "npv"), pointer(*op, "npv_ci"))],
        ["Share of the test examples with the condition", m.q("/operating_point/prevalence", "percent")],
        ["Found (true positives)", m.q("/operating_point/tp", "count")],
        ["Flagged wrongly (false positives)", m.q("/operating_point/fp", "count")],
        ["Missed (false negatives)", m.q("/operating_point/fn", "count")],
        ["Cleared rightly (true negatives)", m.q("/operating_point/tn", "count")],
    ]
    if m.has("/operating_point/at_prevalence/ppv"):
        rows += [["Prevalence typed in for the clinic", m.q("/operating_point/at_prevalence/prevalence", "percent")],
                 ["Positive predictive value there",
                  estimate(m, "/operating_point/at_prevalence/ppv", "/operating_point/at_prevalence/ppv_ci")],
                 ["Negative predictive value there",
                  estimate(m, "/operating_point/at_prevalence/npv", "/operating_point/at_prevalence/npv_ci")]]
    return Table("The operating point: chosen on the validation examples, measured on the test examples",
                 ["Measure", "Value (interval)"], rows, numeric=False)


def _decision(report: RunReport) -> Table:
    m = report.m
    thresholds = m.get("/decision_curve/thresholds") or []
    rows = []
    for wanted in DECISION_TABLE_THRESHOLDS:
        index = next((i for i, t in enumerate(thresholds) if abs(t - wanted) < 1e-9), None)
        if index is None:
            continue
        base = ("decision_curve",)
        rows.append([m.q(pointer(*base, "thresholds", index), "percent"),
                     Estimate(m.q(pointer(*base, "net_benefit", index), "signed_decimal"),
                              Interval(m.q(pointer(*base, "net_benefit_low", index), "signed_decimal_low"),
                                       m.q(pointer(*base, "net_benefit_high", index), "signed_decimal_high"))),
                     m.q(pointer(*base, "treat_all", index), "signed_decimal"), "zero"])
    return Table("Net benefit at some threshold probabilities (test examples)",
                 ["Threshold probability", "Acting on the model (band)", "Flagging everyone",
                  "Flagging no one"], rows)


def _familiarity(report: RunReport) -> Optional[Table]:
    m = report.m
    if not m.has("/familiarity/test_flag_rate"):
        return None
    rows = [["Test examples flagged as unlike the training data",
             estimate(m, "/familiarity/test_flag_rate", "/familiarity/test_flag_rate_ci")],
            ["Test examples checked", m.q("/familiarity/n_test", "count")],
            ["Training examples in the reference", m.q("/familiarity/n_reference", "count")],
            ["Neighbours compared", m.q("/familiarity/k", "count")],
            ["Method", Name(str(m.get("/familiarity/method")))]]
    return Table("Unfamiliar-input check", ["Measure", "Value (interval)"], rows, numeric=False)


def _probe_fit(report: RunReport) -> Table:
    m = report.m
    rows: list[list[Part]] = [["Method", m.said("/probe_fit/method") or "not recorded"],
                              ["Solver iterations", m.q("/probe_fit/iterations", "count")],
                              ["Fitting time", m.q("/probe_fit/fit_seconds", "seconds")]]
    if m.has("/probe_fit/l2"):
        rows.append(["Regularisation strength chosen", m.q("/probe_fit/l2", "setting")])
    if m.has("/probe_fit/inner_cv/folds"):
        rows.append(["Chosen by cross-validation within the training examples, folds",
                     m.q("/probe_fit/inner_cv/folds", "count")])
    for i, _ in enumerate(m.get("/probe_fit/C") or []):
        label = (m.get("/classes") or [])[i] if i < len(m.get("/classes") or []) else ""
        rows.append([Name(f"regularisation C for {label}"), m.q(pointer("probe_fit", "C", i), "setting")])
    return Table("How the last layer was fitted", ["Step", "Value"], rows, numeric=False)


def _training_rows(m: Quoter) -> list[list[Part]]:
    rows: list[list[Part]] = []
    for label, ptr, style in (("Epoch kept (the probe: solver iterations)", "/best_epoch", "count"),
                              ("Epochs run", "/epochs_run", "count"),
                              ("Trainable weights", "/trainable_params", "count"),
                              ("Weights in the model", "/total_params", "count"),
                              ("Training time", "/train_seconds", "seconds")):
        if m.has(ptr):
            rows.append([label, m.q(ptr, style)])
    return rows
