"""Step 2 · Data: upload or the sample dataset; preview, per-class counts, warnings, plain errors."""
from __future__ import annotations

import html
import logging

import gradio as gr
import pandas as pd

from tl_ui.ui.formatting import short_text
from tl_ui.ui.thumbnails import thumbnail

log = logging.getLogger(__name__)

UPLOAD_TYPES = [".zip", ".csv", ".tsv", ".txt", ".xlsx", ".xls"]
# The display windows of DICOM data (values = tl_ui.core.config.DICOM_WINDOWS); "header" = each file's own.
DICOM_WINDOW_CHOICES = [("From each file's header", "header"), ("CT soft tissue", "soft_tissue"),
                        ("CT lung", "lung"), ("CT bone", "bone"), ("CT brain", "brain")]
DICOM_WINDOW_INFO = ("Which range of grey values is shown from black to white, in the previews below and "
                     "in the images the model learns from. CT presets use Hounsfield units; keep the "
                     "header's window for MR and other images.")


def build(max_upload_mb: float) -> dict:
    gr.Markdown(
        "### Step 2 · Your data\n"
        "Upload **a zip file with one folder per class** (each folder holds that class's pictures), or "
        "**a table** (CSV, TSV or Excel) with one column of text and one column of labels. "
        f"Files up to {max_upload_mb:g} MB. Not sure? Press one of the sample buttons to try Transfer Lab "
        "on a small dataset that comes with it.",
        elem_classes="tl-step-intro",
    )
    with gr.Row():
        upload = gr.File(label="Upload a zip / CSV / TSV / Excel file", file_types=UPLOAD_TYPES,
                         type="filepath", elem_id="data-upload", scale=3)
        with gr.Column(scale=2):
            sample_image = gr.Button("Use the sample images (300 handwritten digits, 10 classes)",
                                     elem_id="use-sample-image")
            sample_text = gr.Button("Use the sample texts (movie reviews: fresh or rotten)",
                                    elem_id="use-sample-text")
    with gr.Accordion("Table columns (only for CSV / TSV / Excel files)", open=False):
        gr.Markdown("Transfer Lab guesses which column holds the text and which the label. If it "
                    "guesses wrong, type the column names here and press *Reload*. A **group column** "
                    "(e.g. the hospital site or the scanner of each row) makes step 5 show the numbers per "
                    "group, so you can see whether the model works worse for some of them.")
        with gr.Row():
            text_col = gr.Textbox(label="Text column", placeholder="e.g. note", elem_id="text-column")
            label_col = gr.Textbox(label="Label column", placeholder="e.g. diagnosis", elem_id="label-column")
            group_col = gr.Textbox(label="Group column (optional)", placeholder="e.g. site",
                                   elem_id="group-column")
            reload_btn = gr.Button("Reload with these columns", elem_id="data-reload")
        gr.Markdown("**Several labels per example** (multi-label): a label column whose cells list labels "
                    "separated by `;` or `|` is detected by itself; or name several 0/1 columns, one per label.")
        with gr.Row():
            label_cols = gr.Textbox(label="Label columns (0/1, one per label; optional)",
                                    placeholder="e.g. billing,outage,refund", elem_id="label-columns")
            separator = gr.Dropdown(["auto", ";", "|", "none"], value="auto", label="Separator between labels",
                                    info="'none': one label per row", elem_id="label-separator", interactive=True)
    from tl_ui.ui import labelling_view

    labelling = labelling_view.build()   # issue 41: no labels yet? label the pool here
    error = gr.Markdown("", elem_id="data-error")
    summary = gr.Markdown(NO_DATA_YET, elem_id="data-summary")
    with gr.Row():
        # hidden until data is loaded (an empty plot is only a big white box)
        counts = gr.BarPlot(value=None, x="class", y="examples", title="Examples per class",
                            elem_id="class-counts", height=260, sort=None, scale=2, y_lim=[0, None],
                            y_title="examples", x_title="class", x_label_angle=0, visible=False)
        with gr.Column(scale=3):
            # shown only for DICOM data (tl_ui/ui/handlers.py: _data_loaded)
            window = gr.Dropdown(DICOM_WINDOW_CHOICES, value="header", label="DICOM display window",
                                 info=DICOM_WINDOW_INFO, elem_id="dicom-window", visible=False,
                                 interactive=True)
            gallery = gr.Gallery(label="Some of your images", columns=6, height="auto", visible=False,
                                 elem_id="data-gallery", allow_preview=True)
            table = gr.Dataframe(label="Some of your texts", visible=False, interactive=False, wrap=True,
                                 elem_id="data-table", max_height=300)
    from tl_ui.ui import advisor_view, data_map_view

    advisor = {**advisor_view.build(), **data_map_view.build()}
    next_btn = gr.Button("Next: choose how to train →", variant="primary", elem_id="data-next")
    return {**advisor, **labelling, "data_upload": upload, "use_sample_image": sample_image, "use_sample_text": sample_text,
            "text_column": text_col, "label_column": label_col, "group_column": group_col,
            "data_reload": reload_btn, "label_columns": label_cols, "label_separator": separator,
            "data_error": error, "data_summary": summary, "class_counts": counts,
            "data_gallery": gallery, "data_table": table, "dicom_window": window, "data_next": next_btn}


NO_DATA_YET = ("No data loaded yet. Upload a file above, or press **Use the sample images** "
               "(or **Use the sample texts**) to try Transfer Lab straight away.")


def counts_df(dataset) -> pd.DataFrame:
    counts = dataset.class_counts()
    return pd.DataFrame({"class": list(counts), "examples": list(counts.values())})


def summary_md(dataset, name: str, notes: list[str]) -> str:
    s = dataset.summary()
    kind = "images" if dataset.modality == "image" else "texts"
    counts = dataset.class_counts()
    smallest = min(counts.values()) if counts else 0
    word = "labels" if s.get("multilabel") else "classes"
    lines = [
        f"**{s['n_examples']:,} {kind}** in **{s['n_classes']} {word}** from *{html.escape(name)}*. "
        f"Smallest {'label' if word == 'labels' else 'class'}: {smallest} example{'' if smallest == 1 else 's'}.",
        "",
        f"{word.capitalize()}: " + ", ".join(f"`{html.escape(c)}` ({n})" for c, n in counts.items()),
    ]
    groups = getattr(dataset, "groups", None)
    if getattr(dataset, "group_column", None) and groups:
        per_group: dict[str, int] = {}
        for g in groups:
            per_group[g] = per_group.get(g, 0) + 1
        shown = ", ".join(f"`{html.escape(str(g))}` ({n})" for g, n in list(per_group.items())[:20])
        more = f" and {len(per_group) - 20} more" if len(per_group) > 20 else ""
        lines += ["", f"Groups from column `{html.escape(dataset.group_column)}`: {shown}{more}. "
                      "Step 5 shows the numbers per group."]
    if s.get("multilabel"):
        from tl_ui.ui.results_multilabel import data_step_md

        lines += ["", data_step_md(s["multilabel"])]
    warnings = list(s.get("warnings") or [])
    if warnings:
        lines += ["", "**Please check:**"] + [f"- {html.escape(w)}" for w in warnings[:10]]
        if len(warnings) > 10:
            lines.append(f"- …and {len(warnings) - 10} more.")
    if notes:
        lines += [""] + [f"ℹ️ {n}" for n in notes]
    return "\n".join(lines)


def pick_examples(dataset, n: int = 12) -> list[int]:
    """Up to n example indices, spread over the classes (round robin)."""
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(dataset.labels):
        by_class.setdefault(label, []).append(i)
    picked: list[int] = []
    round_ = 0
    while len(picked) < n and any(round_ < len(v) for v in by_class.values()):
        for label in sorted(by_class):
            if round_ < len(by_class[label]) and len(picked) < n:
                picked.append(by_class[label][round_])
        round_ += 1
    return picked


def is_dicom(dataset) -> bool:
    """True when the dataset's images are DICOM files (they carry patient identifiers)."""
    if dataset is None or dataset.modality != "image":
        return False
    from tl_ui.data.images import image_reading_note

    try:
        return bool((image_reading_note(dataset.items) or {}).get("dicom"))
    except Exception:   # noqa: BLE001 - a header that cannot be read was reported when loading
        log.exception("checking for DICOM files failed")
        return False


def dicom_note(ttl_hours: float) -> str:
    """The one sentence on patient identifiers shown with DICOM data."""
    hours = f"{ttl_hours:g} hour" + ("" if ttl_hours == 1 else "s")
    return ("**Patient identifiers:** DICOM files carry the patient's name, ID and other details in their "
            "headers; Transfer Lab neither keeps nor shows them (previews and results are made from the "
            "pixels alone, and each image is named by its file name inside your upload), and your uploaded "
            f"copies are deleted after {hours} without activity (a run keeps its own copy of the data, "
            "for replays, as long as the run is kept).")


def window_option(value) -> str | None:
    """The dropdown's value as RunConfig.dicom_window: None for each file's own window."""
    return None if value in (None, "", "header") else str(value)


def window_update(dicom: bool):
    """The window dropdown after a new dataset: shown for DICOM data, back to the headers' windows."""
    return gr.update(value="header", visible=dicom)


def preview_updates(lab, owner, dataset, window: str | None = None):
    """(gallery update, table update) showing a few examples of the data. Images are shown as
    metadata-free PNG previews in the owner's private folder, DICOM windowed with `window`."""
    idx = pick_examples(dataset)
    if dataset.modality == "image":
        folder = lab.private.new_folder(owner, "preview")
        items = []
        for k, i in enumerate(idx):
            thumb = thumbnail(dataset.items[i], folder, f"example-{k}", window=window)
            if thumb is not None:
                items.append((str(thumb), dataset.labels[i]))
        return gr.update(value=items, visible=True), gr.update(value=None, visible=False)
    rows = [[short_text(dataset.items[i], 240), dataset.labels[i]] for i in idx]
    return gr.update(value=None, visible=False), gr.update(
        value=pd.DataFrame(rows, columns=["text", "label"]), visible=True)


def problem_thumbnails(lab, owner, data_map, modality: str, window: str | None = None) -> list:
    """(preview PNG, caption) for the data map's listed image problems, in the owner's private folder."""
    if modality != "image" or not data_map or not data_map.get("problems"):
        return []
    folder = lab.private.new_folder(owner, "label-problems")
    out = []
    for k, problem in enumerate(data_map["problems"][:12]):
        thumb = thumbnail(problem["item"], folder, f"problem-{k}", window=window)
        if thumb is not None:
            out.append((str(thumb), f"labelled {problem['label']}; its neighbours say {problem['neighbours_say']}"))
    return out
