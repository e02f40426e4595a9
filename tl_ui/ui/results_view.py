"""What the Results step shows for one of the caller's runs, as `{component key: value}`.

`show` fills the whole step, `runs_overview` the run lists, `compare` the overlay and paired
difference of the ticked runs (`compare_colours` their colours, right after), `scratch_update`
the from-scratch comparison once it has finished.
The handlers turn the keys into the page's components."""
from __future__ import annotations

import html
import shlex
from typing import TYPE_CHECKING, Optional

import gradio as gr
import pandas as pd

from tl_ui.contracts import RunState
from tl_ui.service.continuation import cannot_continue
from tl_ui.service.errors import UserError
from tl_ui.service.runs import open_run, report_probabilities
from tl_ui.ui import compare_view as cv
from tl_ui.ui import evidence as ev
from tl_ui.ui import operating_point_view as opv
from tl_ui.ui.formatting import short_text
from tl_ui.ui.plot_text import overlay_sentence, reliability_html
from tl_ui.ui.results_html import confusion_html
from tl_ui.ui.search_view import search_results_html
from tl_ui.ui.thumbnails import thumbnail

if TYPE_CHECKING:
    from tl_ui.core.runfolder import RunFolder

# Everything `show` may set (the handlers' outputs are these components).
SHOW_KEYS = ("results_summary", "scratch_comparison", "search_summary", "metrics_table", "per_class_table", "group_notes",
             "group_table", "reliability_plot", "reliability_text", "calibration_summary", "conformal_summary",
             "confusion_plot", "mistakes_note", "mistakes_gallery", "mistakes_table", "try_image", "try_file", "try_text", "try_output",
             "try_set", "try_error", "try_why_note", "try_why", "download_model", "download_run_json", "download_card", "replay_command",
             "results_timer", "mistakes_why_btn", "mistakes_why_note", "mistakes_why_gallery", "continue_btn",
             "continue_note", "download_report", "download_report_pdf", "report_note", *opv.KEYS)
REPORT_KEYS = ("download_report", "download_report_pdf", "report_note")
REPORT_CLEARED = {"download_report": gr.update(value=None, interactive=False),
                  "download_report_pdf": gr.update(value=None, interactive=False), "report_note": ""}
WHY_CLEARED = {"try_why_note": "", "try_why": ""}
MISTAKES_WHY_KEYS = ("mistakes_why_note", "mistakes_why_gallery")
MISTAKES_WHY_CLEARED = {"mistakes_why_note": "", "mistakes_why_gallery": gr.update(value=None, visible=False)}
RUNS_KEYS = ("previous_runs", "runs_table", "compare_runs")
COMPARE_KEYS = ("compare_plot", "compare_diff")   # and compare_colours: compare_plot

NOT_FINISHED = {
    "running": "This run is still training; its results appear here when it finishes.",
    "queued": "This run is waiting in the queue; its results appear here when it finishes.",
    "interrupted": "This run was interrupted (the server stopped while it was going on). Start it again in step 4.",
    "stopped": "This run was stopped before it finished, so there are no results. Start a new run in step 4.",
}


def empty(message: str) -> dict:
    """The step with nothing shown but `message` (a run without results, or a problem)."""
    hidden = gr.update(visible=False, value=None)
    off = gr.update(value=None, interactive=False)
    return {"results_summary": message, "scratch_comparison": "", "search_summary": "", "metrics_table": hidden, "per_class_table": hidden,
            "group_notes": gr.update(value="", visible=False), "group_table": hidden,
            "reliability_plot": ev.empty_reliability_df(), "reliability_text": "", "calibration_summary": "",
            "conformal_summary": "", "confusion_plot": "", "mistakes_note": "", "mistakes_gallery": hidden, "mistakes_table": hidden,
            "try_output": hidden, "try_set": "", "try_error": "", **WHY_CLEARED, "download_model": off,
            "download_run_json": off, "download_card": off, "replay_command": "",
            "results_timer": gr.Timer(active=False), "mistakes_why_btn": gr.update(visible=False),
            **MISTAKES_WHY_CLEARED, "continue_btn": gr.update(interactive=True), "continue_note": "", **REPORT_CLEARED,
            **opv.HIDDEN}


def show(lab, owner, run: RunFolder) -> dict:
    """Everything the Results step shows for one of the owner's runs (SHOW_KEYS)."""
    status, config, metrics = run.status(), run.config(), run.metrics()
    if not metrics:
        state = status.get("state", RunState.UNKNOWN)
        if state == RunState.FAILED:
            return empty(f"This run failed: {html.escape(str(status.get('message', '')))}")
        return empty(NOT_FINISHED.get(state, "This run has no results."))

    modality = run.modality() or "image"
    scratch_text, pending = cv.scratch_md(run, _companion(lab, owner, metrics, status))
    groups = metrics.get("groups")
    group_table = ev.group_df(groups)
    values = {
        "results_summary": ev.headline_md(run.id, config, metrics),
        "scratch_comparison": scratch_text,
        "search_summary": search_results_html(metrics.get("search")),
        "metrics_table": gr.update(value=ev.overview_df(metrics, config, _run_seconds(status)), visible=True),
        "per_class_table": gr.update(value=ev.per_class_df(metrics), visible=True),
        "group_notes": gr.update(value=ev.group_md(groups), visible=group_table is not None),
        "group_table": gr.update(value=group_table, visible=group_table is not None),
        "reliability_plot": _or_empty(ev.reliability_df(metrics.get("calibration"))),
        "reliability_text": reliability_html(metrics.get("calibration")),
        "calibration_summary": ev.calibration_md(metrics.get("calibration"), metrics),
        "conformal_summary": ev.conformal_md(metrics.get("conformal"), metrics),
        "confusion_plot": confusion_html(metrics.get("confusion_matrix") or [], metrics.get("classes") or []),
        "try_image": gr.update(visible=modality == "image", value=None),
        "try_file": gr.update(visible=modality == "image", value=None),
        "try_text": gr.update(visible=modality == "text", value=""),
        "try_output": gr.update(value=None, visible=False), "try_set": "", "try_error": "", **WHY_CLEARED,
        "replay_command": (
            "**Replay this run from the command line** (with the data file at the path inside `run.json`):\n\n"
            f"```\npython -m tl_ui train --config run.json --out {shlex.quote('runs/replay-' + run.id)}\n```"),
        "results_timer": gr.Timer(active=pending),
        **REPORT_CLEARED,   # a report is made on request ("Make the study report")
    }
    values.update(opv.panel_values(metrics, config, report_probabilities(run) if metrics.get("roc") else None))
    blocker = cannot_continue(run)   # e.g. a probe's head, fitted to convergence: said before any click
    values.update(continue_btn=gr.update(interactive=blocker is None), continue_note=blocker or "")
    if metrics.get("multilabel"):   # several labels per example: per-label table, micro-/macro-F1
        from tl_ui.ui.results_multilabel import results_values

        values.update(results_values(run.id, config, metrics, _run_seconds(status)))
    values.update(_mistakes(lab, owner, run, metrics.get("mistakes") or [], modality, ev.n_reported(metrics)))
    values.update(MISTAKES_WHY_CLEARED, mistakes_why_btn=gr.update(
        visible=modality == "image" and any(m.get("file") for m in metrics.get("mistakes") or [])))
    files = lab.private.run_downloads(owner, run.path)
    for key, name in (("download_model", "model"), ("download_run_json", "run_json"), ("download_card", "card")):
        path = files.get(name)
        values[key] = (gr.update(value=str(path), interactive=True) if path
                       else gr.update(value=None, interactive=False))
    return values


def operating_point_slide(lab, owner, run_id: str, name: Optional[str], threshold) -> dict:
    """The curves and the readout of the panel at the slider's threshold, for class `name` (opv.SLIDE_KEYS):
    recomputed from the stored test probabilities, no model."""
    run = lab.run(owner, run_id)
    metrics, scores = run.metrics() or {}, report_probabilities(run)
    if not metrics.get("roc") or scores is None or name not in scores[0]:
        return {}
    return opv.slide_values(metrics, run.config(), scores, name, float(threshold))


def report_downloads(lab, owner, run_id: str) -> dict:
    """The shown run's study report as owner-only HTML and PDF downloads (REPORT_KEYS); the PDF's
    button stays off with a plain sentence where PDFs cannot be made here."""
    from tl_ui.service.report import owner_report_files

    files = owner_report_files(lab, owner, run_id)
    pdf = files.get("report_pdf")
    note = ("The report is ready: HTML (opens in any browser, prints to PDF) and PDF." if pdf else
            f"The HTML report is ready. {files.get('pdf_problem') or 'No PDF could be made.'}")
    return {"download_report": gr.update(value=str(files["report"]), interactive=True),
            "download_report_pdf": gr.update(value=str(pdf), interactive=True) if pdf
            else gr.update(value=None, interactive=False),
            "report_note": note}


def _or_empty(reliability: Optional[pd.DataFrame]) -> pd.DataFrame:
    return ev.empty_reliability_df() if reliability is None else reliability


def no_mistakes_md(n: Optional[int]) -> str:
    """What the mistakes section says when there are none (instead of an empty gallery)."""
    where = f"the {n} test example{'' if n == 1 else 's'}" if n else "the test examples"
    return f"No mistakes on {where}: every one was classified right, so there is nothing to show here."


def _mistakes(lab, owner, run: RunFolder, mistakes: list[dict], modality: str, n: Optional[int] = None) -> dict:
    """Images: the run's own metadata-free previews (never the original file, which may be a DICOM
    with patient identifiers), shrunk into the owner's private folder. Texts: a table. None: a
    sentence saying so (an empty gallery would look broken)."""
    if not mistakes:
        return {"mistakes_note": no_mistakes_md(n), "mistakes_gallery": gr.update(value=None, visible=False),
                "mistakes_table": gr.update(value=None, visible=False)}
    if modality == "image":
        folder = lab.private.new_folder(owner, "mistakes")
        items = []
        for k, m in enumerate(mistakes[:12]):
            preview = m.get("file")
            thumb = thumbnail(run.path / preview, folder, f"mistake-{k}") if preview else None
            if thumb is not None:
                items.append((str(thumb), mistake_caption(m)))
        return {"mistakes_note": "", "mistakes_gallery": gr.update(value=items, visible=True),
                "mistakes_table": gr.update(value=None, visible=False)}
    rows = [[m.get("true"), m.get("predicted"), f"{float(m.get('confidence') or 0):.0%}",
             short_text(m.get("item", ""))] for m in mistakes[:12]]
    return {"mistakes_note": "", "mistakes_gallery": gr.update(value=None, visible=False),
            "mistakes_table": gr.update(value=pd.DataFrame(rows, columns=["true class", "predicted", "sure", "text"]),
                                        visible=True)}


def mistake_caption(m: dict) -> str:
    """'is 1, model said 7 (93%)': short enough that a gallery tile shows all of it."""
    return f"is {m.get('true')}, model said {m.get('predicted')} ({float(m.get('confidence') or 0):.0%})"


def set_md(answer: dict) -> str:
    """The prediction set of a try-it answer in plain words, under the probabilities, and whether the
    input looks unlike the training examples (tl_ui.engine.inference.familiarity). Multi-label: the labels given."""
    sentence = answer.get("set_sentence")
    parts = [f"**Prediction set:** {html.escape(str(sentence))}"] if sentence else []
    if answer.get("decision_sentence"):   # the run's saved operating point (issue 33)
        parts.append(f"**{html.escape(str(answer['decision_sentence']))}**")
    if "labels" in answer:
        from tl_ui.ui.results_multilabel import try_md

        parts = [try_md(answer)]
    unlike = unlike_md(answer)
    return "\n\n".join(parts + ([unlike] if unlike else []))


def unlike_md(answer: dict) -> str:
    """The "unlike your training data" flag in words (never by colour alone); "" for runs without it."""
    flagged = answer.get("unlike_training_data")
    if flagged is None:
        return ""
    sentence = html.escape(str(answer.get("unlike_training_data_sentence") or ""))
    if flagged:
        return f"**⚠ Warning: unlike the training data.** {sentence}"
    return f"**Familiar input.** {sentence}"


def why_md(why: dict) -> str:
    """What an explanation shows, in plain words (the map itself is beside it)."""
    name = html.escape(str(why["class"]))
    if why["kind"] == "image":
        how = (f"Warmer colours mark the parts of the image that raised the score of “{name}” most "
               "(Grad-CAM on the model's last feature map).")
    else:
        how = (f"Blue words pushed the model towards “{name}”, orange words away from it; the stronger the "
               "shade, the stronger the push (integrated gradients).")
    return (f"**Why “{name}”?** {how} It shows what the answer rests on, not whether it is right: a model "
            "that looks at a ruler, a scanner's label or one telling word instead of the real content has learned "
            "a shortcut.")


def why_html(why: dict) -> str:
    """The explanation itself: the overlay as an image with its alt text, or the shaded words."""
    if why["kind"] != "image":
        return why["html"]
    import base64

    alt = (f"The uploaded image with a heat map over it: warm colours where the model found most evidence "
           f"for “{why['class']}”.")
    return (f'<img class="tl-why-map" width="260" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(why["overlay_png"]).decode("ascii")}">')


def _companion(lab, owner, metrics: dict, status: dict) -> Optional[RunFolder]:
    """The run's from-scratch companion: None when none was queued (yet); a folder in state
    'unknown' when it is gone."""
    companion = cv.scratch_id(metrics, status)
    if not companion:
        return None
    try:
        return lab.run(owner, companion)
    except UserError:
        return open_run(lab.workspace.runs_dir(owner) / "missing-run")


def _run_seconds(status: dict) -> Optional[float]:
    try:
        return float(status["ended"]) - float(status["started"])
    except (KeyError, TypeError, ValueError):
        return None


# -- the run lists and the comparison -------------------------------------------------------------
def runs_overview(lab, owner, shown: Optional[str] = None, ticked: Optional[list[str]] = None,
                  infos: Optional[list] = None) -> dict:
    """'Previous runs' (showing `shown` when given), the runs table and the tick boxes (RUNS_KEYS)."""
    infos = lab.list_runs(owner) if infos is None else infos
    choices = cv.tick_choices(infos)
    ids = {value for _, value in choices}
    previous = [(info.label(), info.run_id) for info in infos]
    return {
        "previous_runs": gr.update(choices=previous, value=shown) if shown else gr.update(choices=previous),
        "runs_table": cv.runs_df(infos),
        "compare_runs": (gr.update(choices=choices, value=[r for r in ticked if r in ids]) if ticked is not None
                         else gr.update(choices=choices)),
    }


def _ticked_runs(lab, owner, ticked: Optional[list[str]], infos: Optional[list] = None) -> list:
    """The RunInfo of each ticked run, in the order they were ticked."""
    by_id = {info.run_id: info for info in (lab.list_runs(owner) if infos is None else infos)}
    return [by_id[r] for r in dict.fromkeys(ticked or []) if r in by_id][: cv.MAX_TICKED]


def compare(lab, owner, ticked: Optional[list[str]], infos: Optional[list] = None) -> dict:
    """The ticked runs' validation curves overlaid, and the paired difference of two (COMPARE_KEYS);
    two runs: the first ticked minus the second. The plot's colours follow in `compare_colours`."""
    runs = _ticked_runs(lab, owner, ticked, infos)
    note = "" if len(ticked or []) <= cv.MAX_TICKED else f" (the first {cv.MAX_TICKED} are drawn)"
    legend = zip(cv.legend_names(runs), (open_run(i.run_dir) for i in runs))
    overlay = cv.overlay_df(list(legend)) if runs else cv.empty_overlay()
    in_words = overlay_sentence(overlay)
    paired = cv.paired_md([(cv.run_name(i), open_run(i.run_dir)) for i in runs]) + note
    return {"compare_plot": overlay, "compare_diff": f"{in_words}\n\n{paired}" if in_words else paired}


def compare_colours(lab, owner, ticked: Optional[list[str]]) -> dict:
    """A colour per ticked run, sent *after* the rows. Gradio 6.31's LinePlot fixes its colour
    legend when it redraws, and redraws on a props change before that update's rows arrive: rows
    with a new run name are then drawn transparent. A second update that changes `color_map` (only
    when the set of names changed) redraws it with the rows it already has."""
    names = cv.legend_names(_ticked_runs(lab, owner, ticked))
    return {"compare_plot": gr.update(color_map=cv.colour_map(names))}


def show_with_runs(lab, owner, run: RunFolder) -> dict:
    """`show`, plus the run lists with this run ticked (and its companion) and their comparison."""
    values = show(lab, owner, run)
    infos = lab.list_runs(owner)
    ticked = cv.default_ticks(run.id, cv.scratch_id(run.metrics() or {}, run.status()), cv.tick_choices(infos))
    values.update(runs_overview(lab, owner, shown=run.id, ticked=ticked, infos=infos))
    values.update(compare(lab, owner, ticked, infos))
    return values


def scratch_update(lab, owner, run_id: str) -> dict:
    """While the shown run's from-scratch companion trains: nothing; once it ended, the comparison,
    the run lists with both runs ticked, and the timer off."""
    try:
        run = lab.run(owner, run_id)
    except UserError:
        return {"results_timer": gr.Timer(active=False)}
    metrics, status = run.metrics() or {}, run.status()
    companion = _companion(lab, owner, metrics, status)
    text, pending = cv.scratch_md(run, companion)
    if pending:
        return {}
    infos = lab.list_runs(owner)
    ticked = cv.default_ticks(run.id, cv.scratch_id(metrics, status), cv.tick_choices(infos))
    if companion is not None and companion.state() == RunState.FINISHED and companion.id not in ticked:
        return {}   # finished a moment ago, not listed yet: tick both on the next poll
    return {"scratch_comparison": text, "results_timer": gr.Timer(active=False),
            **runs_overview(lab, owner, ticked=ticked, infos=infos), **compare(lab, owner, ticked, infos)}


def mistakes_why(overlays: list[dict]) -> dict:
    """Grad-CAM overlays of the most confident mistakes (tl_ui/service/mistakes.py), in a gallery."""
    if not overlays:
        return {"mistakes_why_note": "This run made no mistakes on its test examples that could be drawn.",
                "mistakes_why_gallery": gr.update(value=None, visible=False)}
    items = [(o["path"], mistake_caption(o["mistake"])) for o in overlays]   # the map is towards "model said" 
    note = ("**What the model looked at when it went wrong.** Warmer colours mark the parts of each image "
            "that pushed the model towards the class it wrongly chose (\"model said\"). A map on the background or the "
            "border, not on the object, suggests it learned something other than what you meant.")
    return {"mistakes_why_note": note, "mistakes_why_gallery": gr.update(value=items, visible=True)}


def onnx_note(report: dict) -> str:
    """The ONNX export in a sentence or two (onnx_report.json): parity with the app, then int8's sentence."""
    parts = []
    if report.get("parity_max_abs_diff") is not None:
        parts.append(f"ONNX fp32 (opset {report.get('opset')}): probabilities within "
                     f"{report['parity_max_abs_diff']:.0e} of the app's on {report.get('n_test')} test examples.")
    int8 = report.get("int8") or {}
    parts.append(int8.get("sentence") or int8.get("note") or "")
    return " ".join(p for p in parts if p) or "The ONNX files are ready."

