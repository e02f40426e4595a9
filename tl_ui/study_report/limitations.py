"""Limitations written from the run's own numbers: each sentence appears only when its condition holds.

A small test set gives wide intervals; a group with few examples says nothing firm; a temperature
the validation examples could not inform; prediction sets without enough validation examples; an
unfamiliar-input rate; a scratch comparison that cannot tell the two apart; what the data reader
left out. Conditions compare stored numbers with each other or with fixed rules of thumb; the
sentences print only stored numbers (quoted) and compute none.
"""
from __future__ import annotations

from tl_ui.study_report.context import Estimate, Interval, Line, Name, RunReport
from tl_ui.study_report.quote import pointer

SMALL_TEST_SET = 100        # below this many test examples every interval is wide (cross-validation shown first)
FEW_POSITIVES = 5           # multi-label: a label with fewer test positives than this says little about recall
FLAG_RATE_NOTE = 0.05       # more ordinary test examples than this flagged as unfamiliar: say so


def fill(report: RunReport) -> None:
    report.lines["limitations"] = limitations(report)


def limitations(report: RunReport) -> list[Line]:
    m, lines = report.m, []
    n_val = m.get("/n_val") or 0
    accuracy_ci = m.interval("/accuracy_ci")
    if m.get("/evaluation/design") == "same_set":
        lines.append(Line(["These numbers were measured on the same examples that chose the epoch and the "
                           "calibration, so they are optimistic; a benchmark setting, not a study result."], "warning"))
    if n_val < SMALL_TEST_SET and accuracy_ci:
        lines.append(Line(["Only ", m.q("/n_val", "count"), " test examples: every number is uncertain. "
                           "The true accuracy could be anywhere from ", Interval(*accuracy_ci), "."], "warning"))
    if report.has("cross_validation") and m.get("/cross_validation/scope") != "head_only":
        lines.append(Line(["The cross-validated estimate (", m.q("/cross_validation/accuracy", "percent"),
                           " accuracy) rests on more examples than the test set and is steadier; it measures the "
                           "recipe, not this one fitted model."]))
    for name in m.get("/floored_intervals") or []:
        lines.append(Line(["The interval ", Name(str(name)), " was widened to what the number of test examples "
                           "allows: the resampling alone would have claimed more certainty than the data hold."]))
    majority = m.get("/majority_baseline_accuracy")
    if majority is not None and accuracy_ci and m.get("/accuracy_ci/0") <= majority:
        lines.append(Line(["The accuracy's interval reaches down to what always guessing the largest class scores (",
                           m.q("/majority_baseline_accuracy", "percent"), "): the data do not show that the model "
                           "beats that."], "warning"))
    lines += _group_lines(report)
    lines += _calibration_lines(report)
    if m.has("/conformal/note"):
        lines.append(Line([m.said("/conformal/note")], "warning"))
    coverage_high, level = m.get("/conformal/coverage_ci/1"), m.get("/conformal/level")
    if coverage_high is not None and level is not None and coverage_high < level:
        lines.append(Line(["The prediction sets held the right class less often than the ", m.q("/conformal/level", "level"),
                           " asked for (", Estimate(m.q("/conformal/coverage", "percent"),
                                                    Interval(*m.interval("/conformal/coverage_ci"))),
                           " on the test examples): with this few validation examples their threshold is not "
                           "yet reliable."], "warning"))
    if m.has("/familiarity/error"):
        lines.append(Line(["The unfamiliar-input reference could not be made, so new inputs unlike the training "
                           "data are not flagged."], "warning"))
    elif m.get("/familiarity/test_flag_rate") is not None and m.get("/familiarity/test_flag_rate") > FLAG_RATE_NOTE:
        lines.append(Line([m.said("/familiarity/sentence") or "", " A high rate means the flag also fires on "
                           "ordinary inputs like these."], "warning"))
    if report.has("scratch") and m.get("/pretraining_gain/ci/0") is not None and m.get("/pretraining_gain/ci/0") <= 0:
        lines.append(Line(["The test examples do not show that pretraining helped: the difference from the same "
                           "recipe trained from random weights could be anywhere from ",
                           Interval(*m.interval("/pretraining_gain/ci", "signed_points")), " points."]))
    if m.has("/operating_point/note"):
        lines.append(Line([m.said("/operating_point/note")], "warning"))
    lines += _multilabel_lines(report)
    lines += _data_lines(report)
    if report.model and report.model.random_init:
        lines.append(Line(["This run started from random weights: it is a from-scratch baseline, not a use of "
                           "pretraining."]))
    lines.append(Line(["Internal evaluation only: the test examples come from the same data file as the training "
                       "examples (the same sources, the same time). How the model does elsewhere is unknown until "
                       "it is checked on data from another site or time (external validation)."], "warning"))
    return lines


def _group_lines(report: RunReport) -> list[Line]:
    m, lines = report.m, []
    for i, _ in enumerate(m.get("/groups/warnings") or []):
        lines.append(Line([m.said(pointer("groups", "warnings", i))], "warning"))
    gap = m.get("/groups/max_gap/between") or []
    if len(gap) == 2 and m.get("/groups/max_gap/accuracy"):
        lines.append(Line(["The largest accuracy gap between groups is ", m.q("/groups/max_gap/accuracy", "points"),
                           " points (", Name(str(gap[0])), " against ", Name(str(gap[1])), "); compare the groups' "
                           "intervals before reading it as a real difference."]))
    return lines


def _calibration_lines(report: RunReport) -> list[Line]:
    m, lines = report.m, []
    if not report.has("calibration"):
        return lines
    if m.get("/calibration/fit") in ("kept at 1", "limited") and m.has("/calibration/temperature_note"):
        lines.append(Line([m.said("/calibration/temperature_note")]))
    if m.has("/calibration/ece_sentence"):
        lines.append(Line([m.said("/calibration/ece_sentence")]))
    return lines


def _multilabel_lines(report: RunReport) -> list[Line]:
    m, lines = report.m, []
    for name, row in (m.get("/multilabel/per_label") or {}).items():
        if row.get("support", 0) < FEW_POSITIVES:
            lines.append(Line(["The label ", Name(name), " has only ",
                               m.q(pointer("multilabel", "per_label", name, "support"), "count"),
                               " test examples: its recall is barely measured."], "warning"))
    return lines


def _data_lines(report: RunReport) -> list[Line]:
    data, lines = report.data, []
    if data.state in ("missing", "changed", "unreadable"):
        lines.append(Line([data.problem or "", " The counts of the whole data set and what the reader left out "
                           "are therefore not shown."], "warning"))
    for i, _ in enumerate(report.d.get("/warnings") or []):
        lines.append(Line([report.d.said(pointer("warnings", i))]))
    if report.r.get("/max_examples") is not None:
        lines.append(Line(["The run used at most ", report.r.q("/max_examples", "count"), " examples of the data "
                           "file (a stratified subset)."]))
    lines += _labelling_lines(report)
    return lines


def _labelling_lines(report: RunReport) -> list[Line]:
    """Labels given in Transfer Lab (issue 41; run.json's extra.labels_provenance): who and when, and that
    the model chose which items were asked."""
    r, base = report.r, "/extra/labels_provenance"
    if r.get(base + "/n_labels") is None:
        return []
    parts = ["The labels were given in Transfer Lab: ", r.q(base + "/n_labels", "count"), " items of ",
             r.said(base + "/pool") or "an unlabelled pool"]
    first, last = r.said(base + "/first_labelled_at"), r.said(base + "/last_labelled_at")
    if first and last:
        parts += [", labelled from ", first, " to ", last]
    people = r.get(base + "/labelled_by") or []
    for i, _ in enumerate(people):
        parts += [" by " if i == 0 else ", ", r.said(pointer("extra", "labels_provenance", "labelled_by", i))]
    parts += [". The model chose which items were asked (those it was unsure about, and unlike the ones labelled "
              "before), so the labelled examples, and the test examples drawn from them, are not a random sample "
              "of the pool: the numbers may differ on the pool as a whole."]
    return [Line(parts, "warning")]
