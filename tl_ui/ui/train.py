"""Step 4 · Train: Start / Stop, live curves, progress with time left, a short log.

The run itself happens in the app's Runner (a worker thread); this page only submits it and then
polls the job with a `gr.Timer` every second, so closing the tab never touches the run, and a
reopened page picks the job up again.
"""
from __future__ import annotations

import gradio as gr

from tl_ui.ui.helpers import SERIES_COLORS, progress_html, train_view

POLL_SECONDS = 1.0


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
    status = gr.Markdown("Press **Start training** to begin.", elem_id="train-status")
    progress = gr.HTML(progress_html(0, ""), elem_id="train-progress")
    # Both plots: the same series names in the same colours (training = blue, validation = orange).
    plot_kw = {"x": "epoch", "color": "series", "color_map": SERIES_COLORS, "color_title": "",
               "x_title": "epoch", "height": 300}
    with gr.Row():
        loss = gr.LinePlot(value=None, y="loss", title="Loss (lower is better; training: every step)",
                           elem_id="loss-plot", **plot_kw)
        acc = gr.LinePlot(value=None, y="accuracy", title="Accuracy (higher is better; once per epoch)",
                          y_lim=[0, 1], elem_id="acc-plot", **plot_kw)
    log = gr.Textbox(label="Log", lines=8, max_lines=12, interactive=False, elem_id="train-log",
                     autoscroll=True)
    timer = gr.Timer(POLL_SECONDS, active=False)
    finished_run = gr.Textbox(visible=False, elem_id="finished-run")   # set when a run ends
    # shown only while the run on this page has finished (not during a new run, not after Stop)
    to_results = gr.Button("See the results →", elem_id="to-results", visible=False, variant="primary")
    return {"start_btn": start, "stop_btn": stop, "train_status": status, "train_progress": progress,
            "loss_plot": loss, "acc_plot": acc, "train_log": log, "timer": timer,
            "finished_run": finished_run, "to_results": to_results}


def view_outputs(job, runner):
    """Values for OUTPUT_KEYS: status, progress, plots, log, buttons, timer, finished run."""
    if job is None:
        return ("Press **Start training** to begin.", progress_html(0, ""), gr.skip(), gr.skip(), gr.skip(),
                gr.update(interactive=True), gr.update(interactive=False), gr.Timer(active=False), gr.skip(),
                gr.update(visible=False))
    events, _ = job.events_since(0)
    view = train_view(events, job.state, runner.position(job), job.message)
    active = not job.done
    # while a run goes on the x axis spans all planned epochs (the curves fill it from the left);
    # afterwards it fits what was drawn (a stopped run does not leave a mostly empty plot)
    x_lim = [0, view.epochs] if active and view.epochs else None
    return (
        view.status,
        progress_html(view.fraction, view.progress_text),
        gr.LinePlot(value=view.loss_df(), x_lim=x_lim),
        gr.LinePlot(value=view.acc_df(), x_lim=x_lim),
        view.log_text(),
        gr.update(interactive=not active),
        gr.update(interactive=active),
        gr.Timer(active=active),
        job.id if job.state == "finished" else gr.skip(),
        gr.update(visible=job.state == "finished"),
    )


def cannot_start(message: str):
    """Values for OUTPUT_KEYS when a run could not be started (the reason in a warning box)."""
    from tl_ui.ui.helpers import warn_box

    return (warn_box(message, "Cannot start"), progress_html(0, ""), gr.skip(), gr.skip(), gr.skip(),
            gr.update(interactive=True), gr.update(interactive=False), gr.Timer(active=False), gr.skip(),
            gr.update(visible=False))


OUTPUT_KEYS = ["train_status", "train_progress", "loss_plot", "acc_plot", "train_log", "start_btn",
               "stop_btn", "timer", "finished_run", "to_results"]
