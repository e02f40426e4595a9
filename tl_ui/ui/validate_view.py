"""Step 6's answers as components: validation.json side by side with the run's own test numbers (an HTML
table with a caption and header cells), the plain sentences, and the batch's summary. No gradio here:
strings only (tl_ui/ui/validate.py lays them out)."""
from __future__ import annotations

import html
from typing import Optional

from tl_ui.ui.formatting import pct_ci, points, points_range


def _cell(value: Optional[float], ci=None) -> str:
    return html.escape(pct_ci(value, ci, short=True)) if value is not None else "–"


def side_by_side_html(report: dict) -> str:
    """Own test examples vs the new data: examples, accuracy, macro-F1, per-class recall, ECE, set coverage,
    flagged share, AUROC and the operating point where the run has them; and the difference."""
    internal = report.get("internal") or {}
    calibration, conformal = report.get("calibration") or {}, report.get("conformal") or {}
    familiarity = report.get("familiarity") or {}
    rows = [("Examples", str(internal.get("n") or 0), str(report.get("n") or 0)),
            ("Accuracy", _cell(internal.get("accuracy"), internal.get("accuracy_ci")),
             _cell(report.get("accuracy"), report.get("accuracy_ci"))),
            ("Macro-F1", _cell(internal.get("macro_f1"), internal.get("macro_f1_ci")),
             _cell(report.get("macro_f1"), report.get("macro_f1_ci")))]
    for name, scores in (report.get("per_class") or {}).items():
        own = (internal.get("per_class") or {}).get(name) or {}
        rows.append((f"Recall of '{html.escape(str(name))}'", _cell(own.get("recall"), own.get("recall_ci")),
                     _cell(scores.get("recall"), scores.get("recall_ci"))))
    rows += [("Calibration error (ECE)", _cell(internal.get("ece"), internal.get("ece_ci")),
              _cell(calibration.get("ece"), calibration.get("ece_ci"))),
             (f"Prediction sets hold the right class ({(conformal.get('level') or 0):.0%} sets)",
              _cell(internal.get("coverage"), internal.get("coverage_ci")),
              _cell(conformal.get("coverage"), conformal.get("coverage_ci"))),
             ("Flagged “unlike the training data”", _cell(internal.get("flag_rate"), internal.get("flag_rate_ci")),
              _cell(familiarity.get("flag_rate"), familiarity.get("flag_rate_ci")))]
    point = report.get("operating_point") or {}
    if point.get("auroc"):
        rows.append(("AUROC", _cell(internal.get("auroc"), internal.get("auroc_ci")),
                     _cell(point["auroc"].get("auroc"), point["auroc"].get("auroc_ci"))))
    at = point.get("at_threshold") or {}
    for key, label in (("sensitivity", "Sensitivity at the run's threshold"),
                       ("specificity", "Specificity at the run's threshold")):
        if key in at:
            rows.append((label, _cell(internal.get(key), internal.get(f"{key}_ci")), _cell(at.get(key), at.get(f"{key}_ci"))))
    body = "".join(f"<tr><th scope='row'>{label}</th><td>{own}</td><td>{new}</td></tr>" for label, own, new in rows)
    difference = report.get("difference") or {}
    foot = ""
    if difference.get("accuracy_ci"):
        foot = (f"<tfoot><tr><th scope='row'>Accuracy, own − new</th><td colspan='2'>{html.escape(points(difference['accuracy']))}"
                f" ({html.escape(points_range(difference['accuracy_ci']))})</td></tr></tfoot>")
    source = html.escape(str(report.get("source") or "the new data"))
    return ("<div class='tl-table-scroll'><table id='validation-side-by-side' class='tl-side-by-side'>"
            f"<caption>The run's own test examples and {source}, each with its 95% interval</caption>"
            "<thead><tr><th scope='col'>Measure</th><th scope='col'>Own test examples</th>"
            f"<th scope='col'>New data</th></tr></thead><tbody>{body}</tbody>{foot}</table></div>")


def sentences_md(report: dict) -> str:
    """The plain sentences: the difference first, then accuracy, calibration, sets, the flag, classes, shift."""
    lines = [(report.get("difference") or {}).get("sentence"), report.get("accuracy_sentence"),
             (report.get("conformal") or {}).get("sentence") or (report.get("conformal") or {}).get("note"),
             (report.get("familiarity") or {}).get("sentence") or (report.get("familiarity") or {}).get("note")]
    ece = (report.get("calibration") or {}).get("ece_ci")
    if ece:
        lines.append(f"On the new data a calibration error anywhere from {ece[0]:.0%} to {ece[1]:.0%} cannot be ruled "
                     "out: the stated probabilities may be that far from how often the model is right there.")
    lines += report.get("sentences") or []
    shift = _shift_sentence(report.get("label_shift") or {})
    if shift:
        lines.append(shift)
    return "\n".join(f"* {html.escape(line)}" for line in lines if line)


def _shift_sentence(shift: dict) -> str:
    moved = [(abs((new or 0) - (train or 0)), name, train, new) for name, (train, new) in shift.items()
             if train is not None and new is not None]
    if not moved:
        return ""
    gap, name, train, new = max(moved)
    if gap < 0.05:
        return "The classes come in about the same proportions as in the run's own data."
    return (f"The classes come in other proportions than in the run's own data: '{name}' is {new:.0%} of the new "
            f"examples against {train:.0%} there (accuracy and the flag rate depend on this mix).")


def batch_md(written: dict) -> str:
    n, flagged = written.get("n") or 0, written.get("n_flagged") or 0
    text = f"**{n} inputs scored.** {flagged} of them look unlike the training data: check those by hand first."
    for warning in written.get("warnings") or []:
        text += f"\n\n{html.escape(warning)}"
    return text


def recalibration_md(done: dict) -> str:
    """The plain sentence, and where the new version is."""
    block = done.get("recalibration") or {}
    return (f"{html.escape(block.get('sentence') or '')}\n\nSaved as a new run **{html.escape(str(done.get('run_id')))}**, "
            f"recalibrated for {html.escape(str(done.get('site') or 'the new site'))} from "
            f"{html.escape(str(done.get('parent_run_id')))} (the same weights; its own temperature and thresholds). "
            "Pick it in the list above, in Results or through the API like any run.")


def recalibration_html(done: dict) -> str:
    """Before vs after on the held-back half: ECE, set coverage, accuracy, sensitivity / specificity at the
    threshold (where the run has one), each with its interval."""
    block = done.get("recalibration") or {}
    before, after = block.get("before") or {}, block.get("after") or {}
    rows = [("Calibration error (ECE)", "ece"), ("Accuracy", "accuracy")]
    if before.get("coverage") is not None or after.get("coverage") is not None:
        rows.append((f"Prediction sets hold the right class ({(block.get('set_level') or 0):.0%} sets)", "coverage"))
    if after.get("threshold") is not None:
        rows += [("Decision threshold", "threshold"), ("Sensitivity at the threshold", "sensitivity"),
                 ("Specificity at the threshold", "specificity")]

    def cell(side: dict, key: str) -> str:
        if key == "threshold":
            return "–" if side.get(key) is None else f"{side[key]:.3g}"
        if key == "ece" and side.get(key) is not None:
            ci = side.get("ece_ci")
            return f"{side[key]:.2f}" + (f" ({ci[0]:.2f}–{ci[1]:.2f})" if ci else "")
        return _cell(side.get(key), side.get(f"{key}_ci"))

    body = "".join(f"<tr><th scope='row'>{label}</th><td>{cell(before, key)}</td><td>{cell(after, key)}</td></tr>"
                   for label, key in rows)
    n = block.get("n_report") or 0
    return ("<div class='tl-table-scroll'><table id='recalibration-before-after' class='tl-side-by-side'>"
            f"<caption>The {n} held-back examples of the new site (not used for refitting), each number with its "
            "95% interval</caption><thead><tr><th scope='col'>Measure</th><th scope='col'>Before (as trained)</th>"
            f"<th scope='col'>After recalibration</th></tr></thead><tbody>{body}</tbody></table></div>")
