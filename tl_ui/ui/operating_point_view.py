"""Results · Operating point (issue 33): the ROC and precision-recall curves of one class against the rest
with the saved operating point marked, a threshold slider whose readout (sensitivity, specificity, PPV,
NPV with intervals, the 2 x 2 table, one plain sentence) is recomputed live from the test examples'
stored calibrated probabilities (predictions.csv, read through the service: no model), and the decision
curve. Every plot is an inline SVG with role="img", its title and description, and a text alternative
(a sentence and the table behind it). Pure functions of metrics.json and those probabilities."""
from __future__ import annotations

import html
from typing import Optional

import gradio as gr
import numpy as np

from tl_ui.study_report import svg
from tl_ui.trust.operating_point import at_prevalence, operating_point_sentence, report_at_threshold
from tl_ui.ui.plot_text import details_html, table_html

KEYS = ("op_panel", "op_intro", "op_class", "op_curves", "op_slider", "op_readout", "op_decision")
SLIDE_KEYS = ("op_curves", "op_readout")
TICKS = [0, 0.25, 0.5, 0.75, 1]
OPTIMISTIC = ("A threshold picked here by eye on the test examples makes these test numbers optimistic: the "
              "threshold would be tuned on the very examples that measure it. The saved operating point is the "
              "one chosen on the validation examples and only measured on the test examples.")
HIDDEN = {"op_panel": gr.update(visible=False), "op_intro": "", "op_curves": "", "op_readout": "", "op_decision": ""}


def _pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _share(value, ci) -> str:
    if value is None:
        return "not measurable (none to count)"
    return f"{_pct(value)} ({_pct(ci[0])} to {_pct(ci[1])})"


def class_roc(metrics: dict, name: str) -> Optional[dict]:
    """The `roc` fields of class `name` against the rest (the named positive class, or its one_vs_rest entry)."""
    roc = metrics.get("roc") or {}
    if roc.get("positive_class") == name:
        return roc
    return (roc.get("one_vs_rest") or {}).get(name)


def default_class(metrics: dict) -> Optional[str]:
    """The saved positive class; else, for two classes, the second; else the first."""
    roc, classes = metrics.get("roc") or {}, [str(c) for c in metrics.get("classes") or []]
    if roc.get("positive_class"):
        return roc["positive_class"]
    return (classes[1] if len(classes) == 2 else classes[0]) if classes else None


def panel_values(metrics: dict, config: dict, scores: Optional[tuple]) -> dict:
    """Everything the panel shows for a finished run (KEYS); hidden for runs without `roc` (multi-label,
    older runs) or without stored probabilities."""
    if not metrics.get("roc") or scores is None or metrics.get("multilabel"):
        return dict(HIDDEN)
    classes = [str(c) for c in metrics.get("classes") or []]
    name = default_class(metrics)
    op = metrics.get("operating_point")
    threshold = float(op["threshold"]) if op else 0.5
    return {"op_panel": gr.update(visible=True), "op_intro": intro_md(op),
            "op_class": gr.update(choices=classes, value=name),
            "op_slider": gr.update(value=round(threshold, 3)),
            **slide_values(metrics, config, scores, name, threshold),
            "op_decision": decision_html(metrics.get("decision_curve"))}


def intro_md(op: Optional[dict]) -> str:
    if not op:
        return ("**No operating point is saved for this run**: it names no condition to find. The curves show each "
                "class against the rest; to save a threshold chosen on the validation examples, name the positive "
                "class in step 3 (*Operating point*) and train again.")
    rule = {"sensitivity": f"the highest threshold with a validation sensitivity of at least {_pct(op.get('target'))}",
            "specificity": f"the lowest threshold with a validation specificity of at least {_pct(op.get('target'))}",
            "youden": "the best sum of sensitivity and specificity on the validation examples (Youden's J)",
            "threshold": "fixed by hand"}.get(op["rule"], op["rule"])
    name = html.escape(str(op["positive_class"]))
    lines = [f"**Saved operating point for {name}:** flag an example when its probability of {name} is at least "
             f"**{op['threshold']:.3f}** ({rule}; chosen on {op['n_chosen']} validation examples). On the "
             f"{op.get('n_reported', '?')} test examples: sensitivity {_share(op['sensitivity'], op['sensitivity_ci'])}, "
             f"specificity {_share(op['specificity'], op['specificity_ci'])}, PPV {_share(op['ppv'], op['ppv_ci'])}, "
             f"NPV {_share(op['npv'], op['npv_ci'])}. {html.escape(str(op.get('sentence') or ''))}"]
    at = op.get("at_prevalence")
    if at and at.get("ppv") is not None:
        lines.append(f"Where {_pct(at['prevalence'])} have the condition: PPV {_share(at['ppv'], at['ppv_ci'])}, "
                     f"NPV {_share(at['npv'], at['npv_ci'])} (Bayes' rule).")
    if op.get("note"):
        lines.append(f"⚠ {html.escape(str(op['note']))}")
    return "\n\n".join(lines)


def slide_values(metrics: dict, config: dict, scores: tuple, name: str, threshold: float) -> dict:
    """The curves with the slider's point and the saved one, and the readout at `threshold` (SLIDE_KEYS)."""
    classes, truth_names, probs = scores
    k = classes.index(name)
    p, truth = probs[:, k], np.array([t == name for t in truth_names])
    at = report_at_threshold(p, truth, float(threshold))
    return {"op_curves": curves_html(metrics, name, at), "op_readout": readout_html(metrics, config, name, at)}


def _saved_point(metrics: dict, name: str) -> Optional[dict]:
    op = metrics.get("operating_point")
    return op if op and op.get("positive_class") == name else None


def curves_html(metrics: dict, name: str, at: dict) -> str:
    roc = class_roc(metrics, name) or {}
    if not (roc.get("curve") or {}).get("fpr"):
        return f"<p>{html.escape(str(roc.get('note') or 'No curve can be drawn for this class.'))}</p>"
    saved = _saved_point(metrics, name)
    esc = html.escape(name)
    roc_chart = svg.Chart((0, 1), (0, 1), width=420, height=320)
    roc_chart.axes("false-positive rate (1 − specificity)", "sensitivity", TICKS, TICKS)
    band = roc.get("roc_band") or {}
    if band.get("fpr"):
        roc_chart.band(band["fpr"], band["tpr_low"], band["tpr_high"], svg.BAND_BLUE, "band (pointwise 95% interval)")
    roc_chart.line([0, 1], [0, 1], svg.GREY, "no better than chance", dash="4 3", width=1.5)
    roc_chart.line(roc["curve"]["fpr"], roc["curve"]["tpr"], svg.BLUE, f"{name} against the rest")
    pr_chart = svg.Chart((0, 1), (0, 1), width=420, height=320)
    pr_chart.axes("recall (sensitivity)", "precision (PPV)", TICKS, TICKS)
    pr_band = roc.get("pr_band") or {}
    if pr_band.get("recall"):
        pr_chart.band(pr_band["recall"], pr_band["precision_low"], pr_band["precision_high"], svg.BAND_BLUE,
                      "band (pointwise 95% interval)")
    pr_chart.line(roc["pr_curve"]["recall"], roc["pr_curve"]["precision"], svg.BLUE, f"{name} against the rest")
    for chart, point in ((roc_chart, _roc_xy), (pr_chart, _pr_xy)):
        if saved and point(saved):
            chart.points(*point(saved), svg.VERMILLION, "saved operating point (chosen on validation)",
                         shape="diamond", size=5)
        if point(at):
            chart.points(*point(at), svg.BLACK,
                         f"the slider's threshold {at['threshold']:.3f}", shape="ring", size=5)
    areas = (f"AUROC {roc['auroc']:.3f} ({roc['auroc_ci'][0]:.3f} to {roc['auroc_ci'][1]:.3f}); "
             f"AUPRC {roc['auprc']:.3f} ({roc['auprc_ci'][0]:.3f} to {roc['auprc_ci'][1]:.3f})")
    roc_alt = (f"ROC curve of {name} against the rest on the {roc['n_positive'] + roc['n_negative']} test examples: "
               f"{areas}. Each point is a threshold; the table lists them.")
    pr_alt = f"Precision-recall curve of {name} against the rest on the test examples. The table lists its points."
    roc_rows = [[_t(t), _pct(f), _pct(s)] for t, f, s in zip(roc["curve"]["thresholds"], roc["curve"]["fpr"],
                                                            roc["curve"]["tpr"])]
    pr_rows = [[_t(t), _pct(r), _pct(p)] for t, r, p in zip(roc["pr_curve"]["thresholds"], roc["pr_curve"]["recall"],
                                                           roc["pr_curve"]["precision"])]
    return (f"<p><strong>{esc} against the rest</strong> (test examples): {html.escape(areas)}.</p>"
            "<div class='tl-op-curves' style='display:flex;flex-wrap:wrap;gap:1rem'>"
            f"<figure>{roc_chart.svg(f'ROC curve, {name}', roc_alt)}"
            + details_html("The ROC curve as a table", html.escape(roc_alt), ["threshold", "false-positive rate",
                                                                             "sensitivity"], roc_rows,
                           f"ROC curve of {name}: its points") + "</figure>"
            f"<figure>{pr_chart.svg(f'Precision-recall curve, {name}', pr_alt)}"
            + details_html("The precision-recall curve as a table", html.escape(pr_alt),
                           ["threshold", "recall", "precision"], pr_rows, f"Precision-recall curve of {name}: its points")
            + "</figure></div>")


def _t(t) -> str:
    return "above every score" if t is None else f"{t:.3f}"


def _roc_xy(point: dict):
    if point.get("sensitivity") is None or point.get("specificity") is None:
        return None
    return [1 - point["specificity"]], [point["sensitivity"]]


def _pr_xy(point: dict):
    if point.get("sensitivity") is None or point.get("ppv") is None:
        return None
    return [point["sensitivity"]], [point["ppv"]]


def readout_html(metrics: dict, config: dict, name: str, at: dict) -> str:
    classes = [str(c) for c in metrics.get("classes") or []]
    negative = next((c for c in classes if c != name), None) if len(classes) == 2 else None
    sentence = operating_point_sentence(at["tp"], at["fp"], at["fn"], at["tn"], name, negative)
    other = f"not {name}" if negative is None else negative
    rows = [["Sensitivity (share of the " + name + " examples flagged)", _share(at["sensitivity"], at["sensitivity_ci"])],
            ["Specificity (share of the " + other + " examples cleared)", _share(at["specificity"], at["specificity_ci"])],
            ["PPV (share of the flagged that are " + name + ")", _share(at["ppv"], at["ppv_ci"])],
            ["NPV (share of the cleared that are " + other + ")", _share(at["npv"], at["npv_ci"])]]
    prevalence = config.get("prevalence")
    if prevalence:
        there = at_prevalence(at["tp"], at["fp"], at["fn"], at["tn"], float(prevalence))
        rows += [[f"PPV where {_pct(float(prevalence))} have it (Bayes' rule)", _share(there["ppv"], there["ppv_ci"])],
                 [f"NPV where {_pct(float(prevalence))} have it (Bayes' rule)", _share(there["npv"], there["npv_ci"])]]
    counts = [[f"truly {name}", str(at["tp"]), str(at["fn"])], [f"truly {other}", str(at["fp"]), str(at["tn"])]]
    return (f"<div class='tl-op-readout' aria-live='polite'><p><strong>At threshold {at['threshold']:.3f}</strong> "
            f"(test examples, 95% intervals): {html.escape(sentence)}</p>"
            f"<p class='tl-warning'>⚠ {html.escape(OPTIMISTIC)}</p>"
            + table_html(f"The four numbers at threshold {at['threshold']:.3f}", ["measure", "value (interval)"], rows)
            + table_html(f"The 2 × 2 table at threshold {at['threshold']:.3f}", ["", "flagged", "not flagged"], counts)
            + "</div>")


def decision_html(curve: Optional[dict]) -> str:
    if not curve:
        return ("<p>The decision curve (net benefit against the threshold probability) is drawn for the saved "
                "positive class: name one in step 3 to get it.</p>")
    pt, nb, everyone = curve["thresholds"], curve["net_benefit"], curve["treat_all"]
    name = str(curve.get("positive_class") or "")
    low = min(-0.05, min(nb))
    high = max(0.05, max(max(nb), max(everyone)))
    chart = svg.Chart((0, 1), (low, high), width=520, height=300)
    chart.axes("threshold probability (how sure before acting)", "net benefit", TICKS,
               [round(low, 2), 0, round(high, 2)])
    if curve.get("net_benefit_low"):
        chart.band(pt, curve["net_benefit_low"], curve["net_benefit_high"], svg.BAND_BLUE, "band (pointwise 95%)")
    chart.line(pt, [max(v, low) for v in everyone], svg.GREY, "flag everyone", dash="4 3", width=1.5)
    chart.line([0, 1], [0, 0], svg.GREY, "flag no one", width=1)
    chart.line(pt, nb, svg.BLUE, f"act on the model's probability of {name}")
    sentence = str(curve.get("sentence") or "")
    rows = [[f"{t:.0%}", f"{n:+.3f}", f"{a:+.3f}", "0"] for t, n, a in zip(pt, nb, everyone)
            if round(t * 100) % 5 == 0]
    return ("<figure>" + chart.svg(f"Decision curve, {name}", sentence)
            + details_html("The decision curve as a table", html.escape(sentence),
                           ["threshold probability", "acting on the model", "flagging everyone", "flagging no one"],
                           rows, f"Net benefit for {name} on the test examples") + "</figure>")
