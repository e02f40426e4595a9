"""Step 4 · Train: Start / Stop, live curves, progress with time left, a short log.

The run itself happens in the app's Runner (a worker thread); this page only submits it and then
polls the job with a `gr.Timer` every second, so closing the tab never touches the run, and a
reopened page picks the job up again.
"""
from __future__ import annotations

import time

import gradio as gr

from tl_ui.contracts import RunState
from tl_ui.service.runs import run_metrics
from tl_ui.ui.formatting import progress_html, warn_box
from tl_ui.ui.plot_text import CURVES_WAITING, curves_html
from tl_ui.ui.search_view import live_trials_html, search_status
from tl_ui.ui.train_view import SERIES_COLORS, TrainView, train_view

POLL_SECONDS = 1.0
IDLE_STATUS = "Press **Start training** to begin."
# A screen reader hears about a run at most this often while it trains (its end always at once).
ANNOUNCE_EVERY_S = 10.0


def build() -> dict:
    gr.Markdown(
        "### Step 4 · Train\n"
        "Press **Start training**. The curves update while the model learns: the *loss* should go "
        "down, the *validation accuracy* (measured on examples the model does not train on) should "
        "go up. You can close this page; the run goes on and you can come back to it.",
        elem_classes="tl-step-intro",
    )
    with gr.Row():
        start = gr.Button("▶ Start training", variant="primary", elem_id="start-btn", scale=2)
        stop = gr.Button("■ Stop", variant="stop", elem_id="stop-btn", interactive=False, scale=1)
    status = gr.Markdown(IDLE_STATUS, elem_id="train-status")
    # what screen readers hear (an aria-live region, tl_ui/ui/theme.py): a sentence per state or
    # epoch, at most every ANNOUNCE_EVERY_S seconds; not shown (the status above says the same)
    announce = gr.Markdown("", elem_id="train-announce", elem_classes="tl-sr-only")
    progress = gr.HTML(progress_html(0, ""), elem_id="train-progress")
    # Both plots: the same series names in the same colours (training = blue, validation = orange).
    # min_width: on a narrow screen (a tablet) the two plots stack instead of cutting their titles
    plot_kw = {"x": "epoch", "color": "series", "color_map": SERIES_COLORS, "color_title": "",
               "x_title": "epoch", "height": 300, "min_width": 400}
    # The plots start from an empty frame (axes and legend, no points): an empty plot would be
    # Gradio's "Empty value" box, whose aria-label on a plain <div> is not allowed (WCAG 4.1.2).
    with gr.Row():
        loss = gr.LinePlot(value=TrainView().loss_df(), y="loss",
                           title="Loss (lower is better; training: every step)", elem_id="loss-plot", **plot_kw)
        acc = gr.LinePlot(value=TrainView().acc_df(), y="accuracy",
                          title="Accuracy (higher is better; once per epoch)", y_lim=[0, 1], elem_id="acc-plot",
                          **plot_kw)
    curves_text = gr.HTML(CURVES_WAITING, elem_id="curves-text")
    trial_table = gr.HTML("", elem_id="trial-table")   # an 'auto' run's tries, live (tl_ui/ui/search_view.py)
    log = gr.Textbox(label="Log", lines=8, max_lines=12, interactive=False, elem_id="train-log",
                     autoscroll=True)
    timer = gr.Timer(POLL_SECONDS, active=False)
    finished_run = gr.Textbox(visible=False, elem_id="finished-run")   # set when a run ends
    # shown only while the run on this page has finished (not during a new run, not after Stop)
    to_results = gr.Button("See the results →", elem_id="to-results", visible=False, variant="primary")
    return {"start_btn": start, "stop_btn": stop, "train_status": status, "train_announce": announce,
            "train_progress": progress, "loss_plot": loss, "acc_plot": acc, "curves_text": curves_text,
            "train_log": log, "timer": timer, "trial_table": trial_table,
            "finished_run": finished_run, "to_results": to_results}


def view_outputs(job, runner, state=None) -> dict:
    """Status, progress, plots, log, buttons, timer, finished run (VIEW_KEYS) for one job.

    `state` (the page's SessionState) remembers the plots' x range: see `_plot_updates`."""
    if job is None:
        return {"train_status": IDLE_STATUS, "train_progress": progress_html(0, ""), "trial_table": "",
                "start_btn": gr.update(interactive=True), "stop_btn": gr.update(interactive=False),
                "timer": gr.Timer(active=False), "to_results": gr.update(visible=False)}
    events, _ = job.events_since(0)
    ci = run_metrics(job.run_dir).get("accuracy_ci") if job.state == RunState.FINISHED else None
    view = train_view(events, job.state, runner.position(job), job.message, accuracy_ci=ci)
    loss, acc, axis_only = _plot_updates(view, state)
    active = not job.done
    status = view.status
    if job.state == RunState.FINISHED and getattr(job.config, "compare_scratch", False):
        status += (" The same recipe from random weights trains next, for the comparison in step 5 "
                   "(it fills in by itself).")
    searching = search_status(events) if job.state == RunState.RUNNING else None
    if searching:
        status = searching
        view.progress_text = "Searching: " + searching.split(":** ", 1)[-1].split(" · ")[0].rstrip(".")
    values = {
        "trial_table": live_trials_html(events),
        "train_status": status,
        "train_progress": progress_html(view.fraction, view.progress_text),
        "loss_plot": loss,
        "acc_plot": acc,
        "curves_text": _curves_text(view),
        "train_log": view.log_text(),
        "start_btn": gr.update(interactive=not active),
        "stop_btn": gr.update(interactive=active),
        "timer": gr.Timer(active=active or axis_only),   # after an axis-only update, one more poll brings the rows
        "to_results": gr.update(visible=job.state == RunState.FINISHED),
    }
    if job.state == RunState.FINISHED:
        values["finished_run"] = job.id
    announcement = _calm_announcement(view, state)
    if announcement is not None:
        values["train_announce"] = announcement
    return values


def _calm_announcement(view: TrainView, state) -> "str | None":
    """The run's sentence for screen readers when it should be said now, else None (nothing new, or
    said less than ANNOUNCE_EVERY_S ago while the run goes on; a run's end is always said)."""
    text = view.announcement()
    if state is None:
        return text
    if not text or text == state.announced:
        return None
    now = time.monotonic()
    if view.state in (RunState.QUEUED, RunState.RUNNING) and state.announced and now - state.announced_at < ANNOUNCE_EVERY_S:
        return None
    state.announced, state.announced_at = text, now
    return text


def _curves_text(view) -> str:
    text = curves_html(view.epoch_rows, view.epochs, view.unit)
    if getattr(view, "score", "accuracy") != "accuracy":   # multi-label runs: the score is micro-F1
        text = text.replace("validation accuracy", "validation micro-F1").replace("training accuracy",
                                                                                   "training micro-F1")
        text = text.replace("Loss and accuracy after each", "Loss and micro-F1 after each")
    return text


def _plot_updates(view, state):
    """(loss update, accuracy update, axis_only) for the two LinePlots.

    The x axis spans all planned epochs (the curves fill it from the left; a run stopped early
    shows how far it got), with a little room on the right for the last epoch's point markers.
    Gradio 6.31's plot drops the rows of an update that also changes `x_lim`, so a new x range
    goes out alone (the page keeps its rows) and the rows follow on the next poll."""
    x_lim = [0, round(view.epochs * 1.03, 3)] if view.epochs else None
    if state is not None and x_lim != state.plot_x_lim:
        state.plot_x_lim = x_lim
        return gr.update(x_lim=x_lim), gr.update(x_lim=x_lim), True
    # Rows only grow while a run trains: the same run with as many rows and the same axes draws the same plots.
    # The page polls every second, and each new value makes the browser build both Vega charts again. A run
    # that has ended always gets its plots: the poll that says so is the page's last one.
    sent = (view.run_id, len(view.loss_rows), len(view.acc_rows), x_lim, view.unit, view.score)
    if state is not None:
        if sent == state.plot_sent and view.state in (RunState.QUEUED, RunState.RUNNING):
            return gr.skip(), gr.skip(), False
        state.plot_sent = sent
    loss_axis, acc_axis = plot_axes(view)
    return (gr.update(value=view.loss_df(), x_lim=x_lim, **loss_axis),
            gr.update(value=view.acc_df(), x_lim=x_lim, **acc_axis), False)


def plot_axes(view) -> tuple[dict, dict]:
    """The plots' titles and x-axis title for this run: epochs, or the probe's solver iterations (its
    curves count L-BFGS iterations, not passes of a minibatch loop); micro-F1 for multi-label runs."""
    per = "epoch" if view.unit == "epoch" else "iteration"
    x_title = "epoch" if per == "epoch" else "iteration of the last layer's fit"
    loss = {"x_title": x_title, "title": f"Loss (lower is better; training: every {'step' if per == 'epoch' else per})"}
    acc = {"x_title": x_title, "title": f"Accuracy (higher is better; once per {per})", "y_title": "accuracy"}
    if getattr(view, "score", "accuracy") != "accuracy":   # multi-label runs
        acc.update(title="Micro-F1 (higher is better; every label decision at score 0.5)", y_title="micro-F1")
    return loss, acc


def cannot_start(message: str) -> dict:
    """What the Train step shows when a run could not be started (the reason in a warning box)."""
    return {"train_status": warn_box(message, "Cannot start"), "train_announce": f"Cannot start: {message}",
            "train_progress": progress_html(0, ""),
            "start_btn": gr.update(interactive=True), "stop_btn": gr.update(interactive=False),
            "timer": gr.Timer(active=False), "to_results": gr.update(visible=False)}


# Everything view_outputs / cannot_start may set.
VIEW_KEYS = ("train_status", "train_announce", "train_progress", "loss_plot", "acc_plot", "curves_text", "trial_table",
             "train_log", "start_btn", "stop_btn", "timer", "finished_run", "to_results")
