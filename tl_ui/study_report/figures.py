"""The report's figures, drawn from the same metrics.json values as the tables beside them.

Each figure is inline SVG (tl_ui/study_report/svg.py) with a text alternative, a caption, and the
table of its numbers; a figure whose block the run lacks is not drawn.
"""
from __future__ import annotations

import math
from typing import Optional

from tl_ui.study_report import svg
from tl_ui.study_report.context import Figure, RunReport

TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_ROWS = 24   # a dot-and-interval chart with more rows than this is left to its table


def fill(report: RunReport) -> None:
    for key, maker in (("reliability", _reliability), ("roc", _roc), ("pr", _pr), ("decision", _decision),
                       ("groups", _groups), ("scratch", _scratch), ("per_class", _per_class),
                       ("ml_labels", _ml_labels)):
        figure = maker(report)
        if figure is not None:
            figure.id = f"figure-{key.replace('_', '-')}"
            if isinstance(figure.svg, svg.Chart):   # the drawing's text alternative is the figure's alt text
                figure.svg = figure.svg.svg(figure.title, figure.alt)
            report.figures[key] = figure


def nice_step(span: float) -> float:
    """A round tick step giving three to six ticks up to `span`."""
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0):
        if span / step <= 5:
            return step
    return 1.0


def _numbers(values) -> list[float]:
    return [float(v) for v in values or [] if v is not None]


def _reliability(report: RunReport) -> Optional[Figure]:
    m = report.m
    if not report.has("calibration"):
        return None
    chart = svg.Chart((0, 1), (0, 1))
    chart.axes("how sure the model said it was (confidence)", "how often it was right (accuracy)", TICKS, TICKS)
    chart.line([0, 1], [0, 1], svg.GREY, "perfectly calibrated", dash="4 3", width=1.5)
    same = m.get("/calibration/bins") == m.get("/calibration/bins_before")
    series = [("bins", svg.BLUE, "circle", None, "before and after calibration (the same)")] if same else [
        ("bins_before", svg.VERMILLION, "ring", "5 3", "before calibration"),
        ("bins", svg.BLUE, "circle", None, "after calibration")]
    for key, colour, shape, dash, label in series:
        bins = m.get(f"/calibration/{key}") or []
        xs = [b["confidence"] for b in bins]
        ys = [b["accuracy"] for b in bins]
        chart.line(xs, ys, colour, dash=dash, width=1.5)
        chart.points(xs, ys, colour, label, shape=shape)
    return Figure(
        id="", caption="Reliability diagram: when the model says it is this sure, how often is it right? Points on "
                       "the grey diagonal mean its confidence can be taken at its word.",
        alt="Reliability diagram of the test examples: mean confidence against accuracy in each confidence bin, "
            "before and after calibration, with the diagonal of perfect calibration. The table beside it lists "
            "every bin.",
        title="Reliability diagram", svg=chart,
        table=report.tables.get("reliability"))


def _roc(report: RunReport) -> Optional[Figure]:
    m = report.m
    fpr, tpr = _numbers(m.get("/roc/curve/fpr")), _numbers(m.get("/roc/curve/tpr"))
    if len(fpr) < 2:
        return None
    positive = str(m.get("/roc/positive_class"))
    chart = svg.Chart((0, 1), (0, 1))
    chart.axes("false-positive rate (share of the others flagged)", "true-positive rate (sensitivity)", TICKS, TICKS)
    band = m.get("/roc/roc_band") or {}
    if band.get("fpr"):
        chart.band(band["fpr"], band["tpr_low"], band["tpr_high"], svg.BAND_BLUE, "band (pointwise interval)")
    chart.line([0, 1], [0, 1], svg.GREY, "no better than chance", dash="4 3", width=1.5)
    chart.line(fpr, tpr, svg.BLUE, f"ROC curve of {positive} against the rest")
    if m.get("/operating_point/sensitivity") is not None and m.get("/operating_point/specificity") is not None:
        chart.points([1 - m.get("/operating_point/specificity")], [m.get("/operating_point/sensitivity")],
                     svg.VERMILLION, "the operating point", shape="diamond", size=5)
    return Figure(
        id="", caption="ROC curve of the positive class against the rest, on the test examples: each point is one "
                    "threshold; the shaded band is how far the curve could move with other examples.",
        alt=f"ROC curve for {positive} on the test examples, with its band, the chance diagonal and the operating "
            "point. The table beside it lists points of the curve; the areas are in the table above.",
        title=f"ROC curve, {positive}", svg=chart,
        table=report.tables.get("roc_points"))


def _pr(report: RunReport) -> Optional[Figure]:
    m = report.m
    recall, precision = _numbers(m.get("/roc/pr_curve/recall")), _numbers(m.get("/roc/pr_curve/precision"))
    if len(recall) < 2:
        return None
    positive = str(m.get("/roc/positive_class"))
    chart = svg.Chart((0, 1), (0, 1))
    chart.axes("recall (share of the positives found)", "precision (share of flags that are right)", TICKS, TICKS)
    band = m.get("/roc/pr_band") or {}
    if band.get("recall"):
        chart.band(band["recall"], band["precision_low"], band["precision_high"], svg.BAND_BLUE,
                   "band (pointwise interval)")
    chart.line(recall, precision, svg.BLUE, f"precision-recall curve of {positive}")
    return Figure(
        id="", caption="Precision against recall for the positive class on the test examples; the band is how far "
                    "the curve could move with other examples.",
        alt=f"Precision-recall curve for {positive} on the test examples with its band. The table beside it lists "
            "points of the curve.",
        title=f"Precision-recall curve, {positive}", svg=chart,
        table=report.tables.get("pr_points"))


def _decision(report: RunReport) -> Optional[Figure]:
    m = report.m
    if not report.has("decision_curve"):
        return None
    pt = _numbers(m.get("/decision_curve/thresholds"))
    nb = _numbers(m.get("/decision_curve/net_benefit"))
    low, high = _numbers(m.get("/decision_curve/net_benefit_low")), _numbers(m.get("/decision_curve/net_benefit_high"))
    everyone = _numbers(m.get("/decision_curve/treat_all"))
    if len(pt) < 2 or len(nb) != len(pt):
        return None
    top_value = max([0.05] + everyone[:1] + (high or nb))
    step = nice_step(top_value)
    top = step * math.ceil(top_value / step + 1e-9)
    # below zero: as far as the model's own line goes (flagging everyone falls off the bottom, as usual)
    bottom = -step * max(1, min(math.ceil(-min(nb + [0.0]) / step - 1e-9), round(top / step)))
    chart = svg.Chart((0, 1), (bottom, top))
    y_ticks = [round(bottom + i * step, 6) for i in range(int(round((top - bottom) / step)) + 1)]
    chart.axes("threshold probability (how sure before acting)", "net benefit", TICKS, y_ticks,
               y_fmt=svg.decimal_tick)
    if len(low) == len(pt) and len(high) == len(pt):
        chart.band(pt, low, high, svg.BAND_BLUE, "band (pointwise interval)")
    chart.line(pt, [0.0] * len(pt), svg.BLACK, "flag no one", width=1.5)
    chart.line(pt, everyone, svg.VERMILLION, "flag everyone", dash="6 3", width=1.5)
    chart.line(pt, nb, svg.BLUE, "act on the model's probability")
    positive = str(m.get("/decision_curve/positive_class") or "")
    return Figure(
        id="", caption="Decision curve for the positive class: the model helps at a threshold probability where its "
                    "line lies above both flagging everyone and flagging no one.",
        alt=f"Decision curve for {positive} on the test examples: net benefit of acting on the model, of flagging "
            "everyone and of flagging no one, across threshold probabilities, with the model's band. The table "
            "beside it lists some thresholds.",
        title=f"Decision curve, {positive}", svg=chart,
        table=report.tables.get("decision"))


def _dots(report: RunReport, rows: list[tuple[str, Optional[list], Optional[float]]], x_label: str, title: str,
          caption: str, alt: str, table_key: str, colour: str = svg.BLUE) -> Optional[Figure]:
    rows = [r for r in rows if r[1]]
    if not rows or len(rows) > MAX_ROWS:
        return None
    chart = svg.Chart((0, 1), (0, 1), height=max(110, 34 + 26 * len(rows) + 50), left=150)
    chart.category_axis([r[0] for r in rows], x_label, TICKS)
    for i, (_, ci, value) in enumerate(rows):
        chart.interval(i + 0.5, ci[0], ci[1], value, colour)
    return Figure(id="", caption=caption, alt=alt, title=title, svg=chart, table=report.tables.get(table_key))


def _groups(report: RunReport) -> Optional[Figure]:
    groups = report.m.get("/groups/by_group") or {}
    if not groups:
        return None
    rows = [(name, g.get("accuracy_ci"), g.get("accuracy")) for name, g in groups.items()]
    return _dots(report, rows, "accuracy on the group's test examples", "Accuracy per group",
                 "Accuracy in each group with its interval: intervals that overlap widely do not show a difference.",
                 "Each group's accuracy on its test examples as a dot with its interval as a bar. The table beside "
                 "it gives the numbers.", "groups")


def _scratch(report: RunReport) -> Optional[Figure]:
    m = report.m
    if not report.has("scratch"):
        return None
    rows = [("pretrained (this run)", m.get("/accuracy_ci"), m.get("/accuracy")),
            ("from random weights", m.get("/scratch_accuracy_ci"), m.get("/scratch_accuracy"))]
    return _dots(report, rows, "accuracy on the same test examples", "Pretrained against from scratch",
                 "The same recipe from pretrained and from random weights, on the same test examples.",
                 "Accuracy of this run and of the same recipe trained from random weights, each with its interval. "
                 "The table beside it gives the numbers and the paired difference.", "scratch")


def _per_class(report: RunReport) -> Optional[Figure]:
    per_class = report.m.get("/per_class") or {}
    if report.multilabel or not per_class:
        return None
    rows = [(name, c.get("recall_ci"), c.get("recall")) for name, c in per_class.items()]
    return _dots(report, rows, "recall: share of the class's test examples found", "Recall per class",
                 "How many of each class's test examples the model recognised, with the interval.",
                 "Each class's recall on the test examples as a dot with its interval. The table beside it gives "
                 "precision, recall and F1 of every class.", "per_class")


def _ml_labels(report: RunReport) -> Optional[Figure]:
    labels = report.m.get("/multilabel/per_label") or {}
    if not labels or len(labels) > MAX_ROWS:
        return None
    names = list(labels)
    chart = svg.Chart((0, 1), (0, 1), height=max(120, 34 + 34 * len(names) + 50), left=150)
    chart.category_axis(names, "precision and recall on the test examples", TICKS)
    for i, name in enumerate(names):
        row = labels[name]
        chart.interval(i + 0.5, *row["precision_ci"], row["precision"], svg.BLUE, "circle", offset=-6)
        chart.interval(i + 0.5, *row["recall_ci"], row["recall"], svg.VERMILLION, "square", offset=6)
    chart.legend_items += [("circle", svg.BLUE, None, "precision"), ("square", svg.VERMILLION, None, "recall")]
    alt = ("Each label's precision (circles) and recall (squares) on the test examples with their intervals. The "
           "table beside it gives the numbers.")
    return Figure(id="", caption="Precision and recall of each label at its threshold, with their intervals.",
                  alt=alt, title="Precision and recall per label", svg=chart, table=report.tables.get("ml_labels"))
