"""Step 5 · Results: the layout only (what fills it: tl_ui/ui/results_view.py).

Every number comes with its 95% interval and one plain sentence; then the reliability diagram,
the prediction sets, the from-scratch comparison, per-group numbers, the confusion heat map, the
most confident mistakes, try-it, downloads, and a table for comparing the user's runs."""
from __future__ import annotations

import gradio as gr

from tl_ui.ui import compare_view as cv
from tl_ui.ui.compare_view import OVERLAY_COLUMNS, RUNS_WIDTHS
from tl_ui.ui.evidence import RELIABILITY_COLORS, empty_reliability_df
from tl_ui.ui.fields import bounded_number

EMPTY_RELIABILITY = empty_reliability_df()

NO_RESULTS = "No results yet: train a model in step 4, or pick a previous run."
SCRATCH_POLL_SECONDS = 2.0


def build() -> dict:
    gr.Markdown(
        "### Step 5 · Results\n"
        "How well does the model do on test examples it never saw while training, and how sure can you be "
        "of that? Every number comes with its 95% interval: the range the true value probably lies in. "
        "Try the model on new examples and download it to use elsewhere.",
        elem_classes="tl-step-intro",
    )
    c: dict = {}
    with gr.Row():
        c["previous_runs"] = gr.Dropdown(choices=[], value=None, label="Previous runs", elem_id="previous-runs",
                                         scale=4, allow_custom_value=False)
        c["refresh_runs"] = gr.Button("↻ Refresh list", elem_id="refresh-runs", scale=1)
    c["results_summary"] = gr.Markdown(NO_RESULTS, elem_id="results-summary")
    c["scratch_comparison"] = gr.Markdown("", elem_id="scratch-comparison", elem_classes="tl-evidence")
    c["search_summary"] = gr.HTML("", elem_id="search-summary")   # an 'auto' run: the tries, the winner, the margin
    # the tables appear with a run's results (an empty table is a scroll box with nothing to focus)
    with gr.Row():
        c["metrics_table"] = gr.Dataframe(label="Overall", interactive=False, elem_id="metrics-table", scale=5,
                                          wrap=True, column_widths=["50%", "50%"], max_height=900, visible=False)
        c["per_class_table"] = gr.Dataframe(label="Per class (on the test examples)", interactive=False,
                                            elem_id="per-class-table", scale=5, wrap=True, max_height=900,
                                            column_widths=["14%", "26%", "26%", "12%", "22%"], visible=False)
    c["group_notes"] = gr.Markdown("", elem_id="group-notes", visible=False)
    c["group_table"] = gr.Dataframe(label="Per group", interactive=False, elem_id="group-table", wrap=True,
                                    visible=False, max_height=400)
    gr.Markdown("**Can you trust its confidence?** When the model says it is 80% sure, it should be right "
                "about 80% of the time: then its points lie on the grey diagonal.")
    with gr.Row():
        # plots start from an empty frame: an empty plot is Gradio's "Empty value" box, whose
        # aria-label on a plain <div> is not allowed (WCAG 4.1.2)
        c["reliability_plot"] = gr.LinePlot(
            value=EMPTY_RELIABILITY, x="confidence", y="accuracy", color="series",
            color_map=RELIABILITY_COLORS, color_title="",
            title="Reliability diagram: how sure vs. how often right (test examples)",
            x_title="confidence (how sure it said it was)", y_title="accuracy (how often right)",
            x_lim=[0, 1], y_lim=[0, 1], height=320, elem_id="reliability-plot", scale=5, min_width=440,
            tooltip=["series", "confidence", "accuracy", "examples"])
        with gr.Column(scale=4, min_width=280):   # a narrow screen stacks them (the plot keeps its title)
            c["calibration_summary"] = gr.Markdown("", elem_id="calibration-summary")
            c["reliability_text"] = gr.HTML("", elem_id="reliability-text")   # the diagram as a table
            c["conformal_summary"] = gr.Markdown("", elem_id="conformal-summary")
    c.update(_operating_point_section())
    gr.Markdown("**Confusion matrix** — how often each true class (row) was predicted as each class (column).")
    c["confusion_plot"] = gr.HTML("", elem_id="confusion-plot")
    gr.Markdown("**Most confident mistakes** — the test examples the model got wrong while being most sure.")
    c["mistakes_note"] = gr.Markdown("", elem_id="mistakes-note")   # "No mistakes on the 40 test examples"
    c["mistakes_gallery"] = gr.Gallery(label="Most confident mistakes", columns=6, height="auto", visible=False,
                                       elem_id="mistakes-gallery", elem_classes="tl-mistakes")
    c["mistakes_table"] = gr.Dataframe(label="Most confident mistakes", interactive=False, visible=False, wrap=True,
                                       elem_id="mistakes-table", column_widths=["14%", "14%", "8%", "64%"])
    c["mistakes_why_btn"] = gr.Button("Show what the model looked at in these mistakes", visible=False,
                                      elem_id="mistakes-why-btn", variant="secondary")
    c["mistakes_why_note"] = gr.Markdown("", elem_id="mistakes-why-note")
    c["mistakes_why_gallery"] = gr.Gallery(label="What the model looked at (Grad-CAM) in its mistakes", columns=6,
                                           height="auto", visible=False, elem_id="mistakes-why-gallery")
    with gr.Group():
        gr.Markdown("**Try it** — give the model a new example.")
        with gr.Row():
            with gr.Column():
                c["try_image"] = gr.Image(type="filepath", label="An image", visible=True, elem_id="try-image",
                                          sources=["upload", "clipboard"], height=220)
                # the browser cannot show DICOM or 16-bit TIFF: those come as a plain file
                c["try_file"] = gr.File(label="…or a DICOM / TIFF file (any extension)", type="filepath",
                                        elem_id="try-file", height=150)
            c["try_text"] = gr.Textbox(label="A text", lines=3, visible=False, elem_id="try-text")
            with gr.Column():
                # shown with the first answer (an empty gr.Label is an "Empty value" box: see above)
                c["try_output"] = gr.Label(num_top_classes=5, label="What the model thinks (calibrated)",
                                           elem_id="try-output", visible=False)
                c["try_set"] = gr.Markdown("", elem_id="try-set")
        with gr.Row():
            c["try_btn"] = gr.Button("Predict", elem_id="try-btn")
            c["try_why_btn"] = gr.Button("Why this answer?", elem_id="try-why-btn", variant="secondary")
        c["try_error"] = gr.Markdown("", elem_id="try-error")
        # What the answer rests on: a Grad-CAM overlay (images) or shaded words (texts); shown once asked for.
        c["try_why_note"] = gr.Markdown("", elem_id="try-why-note")
        # plain HTML (an <img> with its alt text): gr.Image wraps its picture in an unnamed button
        c["try_why"] = gr.HTML("", elem_id="try-why")
    gr.Markdown("**Downloads** — the model folder works with the ordinary `timm` / `transformers` "
                "libraries; `run.json` replays this run from the command line.")
    with gr.Row():
        c["download_model"] = gr.DownloadButton("Download model (.zip)", value=None, interactive=False,
                                                elem_id="download-model")
        c["download_run_json"] = gr.DownloadButton("Download run.json", value=None, interactive=False,
                                                   elem_id="download-run-json")
        c["download_card"] = gr.DownloadButton("Download model card", value=None, interactive=False,
                                               elem_id="download-card")
    c["replay_command"] = gr.Markdown("", elem_id="replay-command")
    c.update(_report_section())
    c.update(_share_section())
    gr.Markdown("**Train more** — continue this run from its best weights with the same recipe and data. It "
                "becomes a new run (the list says which run it continues) and its curves go on where this "
                "one stopped; its results are measured on the same test examples, so the two compare.")
    with gr.Row():
        c["more_epochs"] = bounded_number(value=5, minimum=1, precision=0, label="More epochs", elem_id="more-epochs",
                                          scale=1)
        c["continue_btn"] = gr.Button("Train more epochs", elem_id="continue-btn", variant="secondary", scale=1)
    c["continue_note"] = gr.Markdown("", elem_id="continue-note")
    c.update(_compare_section())
    c["results_timer"] = gr.Timer(SCRATCH_POLL_SECONDS, active=False)   # while the scratch run trains
    return c


def _operating_point_section() -> dict:
    """From a score to a decision (issue 33; filled by tl_ui/ui/operating_point_view.py): single-label runs."""
    c: dict = {}
    with gr.Column(visible=False, elem_id="op-panel") as panel:
        gr.Markdown("**Operating point** — a decision needs a threshold: flag an example when the model's "
                    "probability of the condition is at least the threshold. The curves show every threshold at once "
                    "on the test examples.")
        c["op_intro"] = gr.Markdown("", elem_id="op-intro")
        c["op_class"] = gr.Dropdown(choices=[], value=None, label="Curves of this class against the rest",
                                    elem_id="op-class", allow_custom_value=False)
        c["op_curves"] = gr.HTML("", elem_id="op-curves")
        c["op_slider"] = gr.Slider(0, 1, value=0.5, step=0.001, label="Try a threshold (probability of the class)",
                                   elem_id="op-slider")
        c["op_readout"] = gr.HTML("", elem_id="op-readout")
        gr.Markdown("**Decision curve** — is acting on the model better than flagging everyone or no one? Net "
                    "benefit weighs each false alarm by how sure you want to be before acting (Vickers & Elkin 2006).")
        c["op_decision"] = gr.HTML("", elem_id="op-decision")
    c["op_panel"] = panel
    return c


def _report_section() -> dict:
    """The study report (TRIPOD+AI layout, HTML and PDF): written on request from the run's files."""
    gr.Markdown("**Study report** — a report to file with an ethics board, a department or a journal: the data, "
                "the split, the model, every number with its interval, limitations and a TRIPOD+AI checklist, "
                "from this run's files alone.")
    c: dict = {}
    with gr.Row():
        c["report_btn"] = gr.Button("Make the study report", elem_id="report-btn", variant="secondary")
        c["download_report"] = gr.DownloadButton("Download report (HTML)", value=None, interactive=False,
                                                 elem_id="download-report")
        c["download_report_pdf"] = gr.DownloadButton("Download report (PDF)", value=None, interactive=False,
                                                     elem_id="download-report-pdf")
    c["report_note"] = gr.Markdown("", elem_id="report-note")
    return c


def _share_section() -> dict:
    """Share & export (issue 39): ONNX files (fp32 and int8, measured on the test examples) and a Gradio Space
    folder, made in a worker of their own; the int8 sentence beside the download."""
    gr.Markdown("**Share & export** — ONNX files for ONNX Runtime (C#, Java, C++, Python, phones): the model's "
                "calibrated probabilities in one graph, with an int8 copy measured on the test examples and a "
                "ten-line `predict_onnx.py`. Or a Hugging Face Space folder: a try-it page for colleagues "
                "(`python app.py`, or upload it as a Space).")
    c: dict = {}
    with gr.Row():
        c["share_onnx_btn"] = gr.Button("Export ONNX (fp32 + int8)", elem_id="share-onnx-btn", variant="secondary")
        c["download_onnx"] = gr.DownloadButton("Download ONNX (.zip)", value=None, interactive=False,
                                               elem_id="download-onnx")
        c["share_space_btn"] = gr.Button("Make a Space folder", elem_id="share-space-btn", variant="secondary")
        c["download_space"] = gr.DownloadButton("Download Space (.zip)", value=None, interactive=False,
                                                elem_id="download-space")
    c["share_note"] = gr.Markdown("", elem_id="share-note")
    return c


def _compare_section() -> dict:
    gr.Markdown("### Compare your runs\nEvery run you made, with its numbers and their 95% intervals. Tick "
                "runs to overlay their validation curves; tick two to see how much they differ on the same "
                "test examples.")
    c = {"runs_table": gr.Dataframe(label="Your runs (newest first)", interactive=False, wrap=True,
                                    elem_id="runs-table", max_height=420, column_widths=RUNS_WIDTHS)}
    with gr.Row():
        c["compare_runs"] = gr.CheckboxGroup(choices=[], value=[], label="Runs to compare (finished runs)",
                                             elem_id="compare-runs", scale=2, min_width=280)
        c["compare_plot"] = gr.LinePlot(
            value=cv.empty_overlay(), x=OVERLAY_COLUMNS[0], y=OVERLAY_COLUMNS[1], color=OVERLAY_COLUMNS[2],
            color_title="",
            title="Validation accuracy of the ticked runs", x_title="epoch (a probe: iteration)", x_axis_format="~g",
            y_title="validation accuracy", y_lim=[0, 1], height=300, elem_id="compare-plot", scale=3,
            min_width=440)
    c["compare_diff"] = gr.Markdown("", elem_id="compare-diff")
    return c
