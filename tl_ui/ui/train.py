"""Step 4 · Train: Start / Stop, live curves, progress with time left, a short log.

The run itself happens in the app's Runner (a worker thread); this page only submits it and then
polls the job with a `gr.Timer` every second, so closing the tab never touches the run, and a
reopened page picks the job up again.
"""
from __future__ import annotations

import gradio as gr

from tl_ui.ui.helpers import progress_html, train_view

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
    with gr.Row():
        loss = gr.LinePlot(value=None, x="epoch", y="loss", color="series",
                           title="Loss (lower is better)", x_title="epoch", elem_id="loss-plot", height=300)
        acc = gr.LinePlot(value=None, x="epoch", y="accuracy", color="series",
                          title="Accuracy (higher is better)", x_title="epoch", y_lim=[0, 1],
                          elem_id="acc-plot", height=300)
    log = gr.Textbox(label="Log", lines=8, max_lines=12, interactive=False, elem_id="train-log",
                     autoscroll=True)
    timer = gr.Timer(POLL_SECONDS, active=False)
    finished_run = gr.Textbox(visible=False, elem_id="finished-run")   # set when a run ends
    return {"start_btn": start, "stop_btn": stop, "train_status": status, "train_progress": progress,
            "loss_plot": loss, "acc_plot": acc, "train_log": log, "timer": timer,
            "finished_run": finished_run}


def view_outputs(job, runner):
    """(status, progress, loss df, acc df, log, start btn, stop btn, timer, finished run) for a job."""
    if job is None:
        return ("Press **Start training** to begin.", progress_html(0, ""), gr.skip(), gr.skip(), gr.skip(),
                gr.update(interactive=True), gr.update(interactive=False), gr.Timer(active=False), gr.skip())
    events, _ = job.events_since(0)
    view = train_view(events, job.state, runner.position(job), job.message)
    active = not job.done
    return (
        view.status,
        progress_html(view.fraction, view.progress_text),
        view.loss_df(),
        view.acc_df(),
        view.log_text(),
        gr.update(interactive=not active),
        gr.update(interactive=active),
        gr.Timer(active=active),
        job.id if job.state == "finished" else gr.skip(),
    )


OUTPUT_KEYS = ["train_status", "train_progress", "loss_plot", "acc_plot", "train_log", "start_btn",
               "stop_btn", "timer", "finished_run"]
