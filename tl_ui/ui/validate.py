"""Step 6 · Validate & use: the layout only (answers: tl_ui/ui/validate_view.py; events:
tl_ui/ui/validate_handlers.py). Pick a finished run; check it on another site's labelled data (not
retrained), side by side with its own test numbers; score a batch of unlabelled inputs and download the table.
Both run in a worker of their own (progress, Stop)."""
from __future__ import annotations

import gradio as gr

from tl_ui.data.images import IMAGE_EXTENSIONS
from tl_ui.data.table_read import TABLE_EXTENSIONS

UPLOAD_TYPES = [".zip", *sorted(TABLE_EXTENSIONS)]
BATCH_TYPES = [".zip", *sorted(TABLE_EXTENSIONS), *sorted(IMAGE_EXTENSIONS)]
NO_RUN = "Pick a finished run first (train one in step 4, or press ↻ to refresh the list)."


def build() -> dict:
    gr.Markdown(
        "### Step 6 · Validate & use\n"
        "Does the model still work **there** — at another hospital, on another scanner, next quarter? Check a "
        "finished model on new labelled data, without retraining it, and see its numbers beside its own test "
        "numbers. Then score a batch of new inputs and download the table.",
        elem_classes="tl-step-intro",
    )
    c: dict = {}
    with gr.Row():
        c["validate_run"] = gr.Dropdown(choices=[], value=None, label="Finished run", elem_id="validate-run",
                                        scale=4, allow_custom_value=False)
        c["validate_refresh"] = gr.Button("↻ Refresh list", elem_id="validate-refresh", scale=1)
    gr.Markdown("#### Check it on new labelled data")
    gr.Markdown("Same class names as the run (a zip of class folders, or a table). Labels the model does not know "
                "are left out and counted; classes missing from the new data are named.")
    c["validate_upload"] = gr.File(label="New labelled data", file_types=UPLOAD_TYPES, type="filepath",
                                   elem_id="validate-upload")
    with gr.Row():
        c["validate_btn"] = gr.Button("Check the model on these data", variant="primary", elem_id="validate-btn")
        c["validate_stop"] = gr.Button("Stop", variant="stop", elem_id="validate-stop")
    c["validate_status"] = gr.Markdown("", elem_id="validate-status")
    c["validate_table"] = gr.HTML("", elem_id="validate-table")
    c["validate_sentences"] = gr.Markdown("", elem_id="validate-sentences", elem_classes="tl-evidence", visible=False)
    c["validate_files"] = gr.File(label="validation.json and its predictions (CSV)", file_count="multiple",
                                  interactive=False, visible=False, elem_id="validate-files")
    gr.Markdown("#### Recalibrate for this site (optional)")
    gr.Markdown("Refits how sure the model says it is (its temperature), its prediction sets and its decision "
                "threshold on a random half of the labelled data above, and checks them on the other half — never "
                "on the same examples. The model itself is not retrained. The result is saved as a new run, linked "
                "to this one, that you can download and use like any run.")
    with gr.Row():
        c["recal_site"] = gr.Textbox(label="Site name", placeholder="e.g. Hospital B (default: the file's name)",
                                     elem_id="recal-site", scale=3)
        c["recal_btn"] = gr.Button("Recalibrate for this site", elem_id="recal-btn", scale=2)
    c["recal_status"] = gr.Markdown("", elem_id="recal-status")
    c["recal_table"] = gr.HTML("", elem_id="recal-table")
    c["recal_files"] = gr.File(label="The recalibrated model (zip), its run.json and model card", file_count="multiple",
                               interactive=False, visible=False, elem_id="recal-files")
    gr.Markdown("#### Score new inputs (no labels)")
    gr.Markdown("A zip of images (any folders), or a table with one text or one image path per row. The table "
                "names each input by its file name or row, never by anything inside a DICOM header.")
    c["batch_upload"] = gr.File(label="Inputs to score", file_types=BATCH_TYPES, type="filepath",
                                elem_id="batch-upload")
    with gr.Row():
        c["batch_btn"] = gr.Button("Score these inputs", variant="primary", elem_id="batch-btn")
        c["batch_stop"] = gr.Button("Stop", variant="stop", elem_id="batch-stop")
    c["batch_status"] = gr.Markdown("", elem_id="batch-status")
    c["batch_files"] = gr.File(label="predictions.csv (and .xlsx)", file_count="multiple", interactive=False,
                               visible=False, elem_id="batch-files")
    return c
