"""Step 2's labelling mode (issue 41): the layout (its events: tl_ui/ui/labelling_handlers.py): label an unlabelled pool one item at a time, the model asking for
what it learns most from. Everything goes through the service (`lab.labelling`,
tl_ui/service/labelling.py): the labels are stored in the owner's folder as each is given, the
suggestions and the learning curve come from an inference worker (no model in this process).

Keyboard (when no text box has the focus): 1–9 and 0 press the class buttons in order (for one-character
class names such as the digits, the name's own key), Enter confirms the model's guess, U undoes, S
skips, N sets the item aside as "not sure".
"""
from __future__ import annotations

import html
from typing import Optional

import gradio as gr
import pandas as pd


MAX_BUTTONS = 10
POOL_TYPES = [".zip", ".csv", ".tsv", ".txt", ".xlsx", ".xls"]
SAMPLE_POOL_SIZE = 100
VIEW_KEYS = ("lbl_state", "lbl_status", "lbl_item", "lbl_guess", "lbl_why", "lbl_progress",
             "lbl_curve", "lbl_stop", "lbl_confirm", "lbl_timer", *(f"lbl_class_{i}" for i in range(MAX_BUTTONS)))
NOTHING_YET = "No pool yet. Upload one above and press **Start labelling**, or try it with the sample digits."

# One listener for the whole page: a key press outside text boxes presses the labelling view's button.
KEYS_JS = """
() => {
  if (window.__tlLabellingKeys) return;
  window.__tlLabellingKeys = true;
  document.addEventListener('keydown', (event) => {
    const view = document.getElementById('labelling-view');
    if (!view || view.offsetParent === null || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const tag = (target && target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || (target && target.isContentEditable)) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    let button = null;
    for (const b of view.querySelectorAll('button[id^="label-class-"]')) {
      const m = (b.textContent || '').match(/\\[key ([^\\]]+)\\]/);
      if (m && m[1].toLowerCase() === key && b.offsetParent !== null) { button = b; break; }
    }
    const named = {'Enter': 'label-confirm', 'u': 'label-undo', 's': 'label-skip', 'n': 'label-not-sure'};
    if (!button && named[key]) button = document.getElementById(named[key]);
    if (button && !button.disabled && button.offsetParent !== null) { event.preventDefault(); button.click(); }
  });
}
"""


def shortcut_keys(classes: list[str]) -> list[str]:
    """One key per class button: the name itself when every class is one distinct character that is not a
    command key (the digits), else 1–9 then 0."""
    names = [c.lower() for c in classes]
    if (len(set(names)) == len(names) and all(len(c) == 1 and c.isalnum() for c in names)
            and not set(names) & {"u", "s", "n"}):
        return names
    return [str(i + 1) if i < 9 else "0" for i in range(min(len(classes), MAX_BUTTONS))]


def build() -> dict:
    with gr.Accordion("Nothing labelled yet? Label your pool here — the model asks for what it needs",
                      open=False, elem_id="labelling-accordion"):
        with gr.Column(elem_id="labelling-view"):
            gr.Markdown(
                "Upload **unlabelled** images (a zip, any folders; DICOM too) or a table with one text per row, "
                "and type your class names. Label one item at a time with the buttons or the keys shown on "
                "them. After a few labels of each class a quick model on the frozen embeddings picks the "
                "item it learns most from, says why, and shows its guess (saved only when you confirm it). "
                "Each label is saved in your folder at once.")
            with gr.Row():
                pool = gr.File(label="Unlabelled pool (zip of images, or a table of texts)", file_types=POOL_TYPES,
                               type="filepath", elem_id="label-pool-upload", scale=3)
                with gr.Column(scale=2):
                    classes = gr.Textbox(label="Class names, separated by commas", placeholder="e.g. benign, malignant",
                                         elem_id="label-classes")
                    examples = gr.File(label="Or a few labelled examples (CSV: item,label; optional)",
                                       file_types=[".csv"], type="filepath", elem_id="label-examples")
            with gr.Row():
                start = gr.Button("Start labelling", variant="primary", elem_id="label-start")
                sample = gr.Button(f"Try it with {SAMPLE_POOL_SIZE} sample digits (their labels hidden)",
                                   elem_id="label-sample")
            status = gr.Markdown(NOTHING_YET, elem_id="label-status")
            progress = gr.Markdown("", elem_id="label-progress")
            with gr.Row():
                with gr.Column(scale=3):
                    # an <img> with its alt text (Gradio's Image adds an unnamed zoom button: axe button-name)
                    item = gr.HTML("", elem_id="label-item")
                with gr.Column(scale=2):
                    guess = gr.Markdown("", elem_id="label-guess")
                    why = gr.Markdown("", elem_id="label-why")
                    confirm = gr.Button("Confirm the model's guess [Enter]", visible=False, elem_id="label-confirm")
            with gr.Row(elem_id="label-class-buttons"):
                buttons = [gr.Button(f"class {i}", visible=False, elem_id=f"label-class-{i}", min_width=80)
                           for i in range(MAX_BUTTONS)]
            with gr.Row():
                undo = gr.Button("Undo [U]", elem_id="label-undo", size="sm")
                skip = gr.Button("Skip [S]", elem_id="label-skip", size="sm")
                not_sure = gr.Button("Not sure [N]", elem_id="label-not-sure", size="sm")
            # starts from an empty frame with every series (Gradio fixes the legend from the first data; an
            # empty plot would be its "Empty value" box, whose aria-label on a <div> is not allowed)
            curve = gr.LinePlot(value=curve_frame(None), x="labels", y="accuracy", color="line",
                                color_map=CURVE_COLOURS, color_title="", elem_id="label-curve",
                                title="Learning curve: cross-validated accuracy vs labels given", height=260,
                                y_lim=[0, 1], x_title="labels given", y_title="accuracy")
            stop = gr.Markdown("", elem_id="label-stop")
            with gr.Row():
                export = gr.Button("Download the labels (CSV: item,label)", elem_id="label-export", size="sm")
                to_wizard = gr.Button("Train on these labels → (loads them as your data)", variant="primary",
                                      elem_id="label-train")
            export_file = gr.File(label="Your labels", visible=False, elem_id="label-export-file")
            # polls for the model's new suggestions once the page has a labelling session (LabellingHandlers._view)
            timer = gr.Timer(3.0, active=False)
    state = gr.State({"item": None, "guess": None, "version": -1})
    return {"lbl_pool": pool, "lbl_classes": classes, "lbl_examples": examples, "lbl_start": start,
            "lbl_sample": sample, "lbl_status": status, "lbl_progress": progress, "lbl_item": item,
            "lbl_guess": guess, "lbl_why": why, "lbl_confirm": confirm, "lbl_undo": undo,
            "lbl_skip": skip, "lbl_not_sure": not_sure, "lbl_curve": curve, "lbl_stop": stop,
            "lbl_export": export, "lbl_export_file": export_file, "lbl_train": to_wizard, "lbl_timer": timer,
            "lbl_state": state, **{f"lbl_class_{i}": b for i, b in enumerate(buttons)}}


CURVE_COLOURS = {"accuracy": "#2563eb", "95% interval, low": "#94a3b8", "95% interval, high": "#94a3b8"}


def curve_frame(curve: Optional[dict]) -> pd.DataFrame:
    """The curve's rows (labels, accuracy, line); before any point, one empty row per line."""
    points = (curve or {}).get("points") or []
    if not points:
        return pd.DataFrame([{"labels": float("nan"), "accuracy": float("nan"), "line": name}
                             for name in CURVE_COLOURS])
    rows = []
    for p in points:
        low, high = p["accuracy_ci"]
        rows += [{"labels": p["n"], "accuracy": p["accuracy"], "line": "accuracy"},
                 {"labels": p["n"], "accuracy": low, "line": "95% interval, low"},
                 {"labels": p["n"], "accuracy": high, "line": "95% interval, high"}]
    return pd.DataFrame(rows)


def item_html(name: str, modality: str, content: str = "", png_base64: str = "") -> str:
    """The item to label, large: an image (a metadata-free PNG preview, inline) or a text."""
    title = f'<p class="tl-label-name">Item to label: <strong>{html.escape(name)}</strong></p>'
    if modality == "text":
        return (f'{title}<blockquote class="tl-label-text" style="font-size:1.2em;max-height:360px;overflow:auto">'
                f'{html.escape(content)}</blockquote>')
    if not png_base64:
        return f"{title}<p>This image cannot be shown (it could not be read).</p>"
    return (f'{title}<img src="data:image/png;base64,{png_base64}" alt="the image to label, {html.escape(name)}" '
            'style="height:320px;max-width:100%;object-fit:contain;image-rendering:pixelated;'
            'border:1px solid #cbd5e1;border-radius:6px">')


def curve_text(curve: Optional[dict]) -> str:
    points = (curve or {}).get("points") or []
    if not points:
        return (curve or {}).get("sentence") or ""
    shown = "; ".join(f"{p['n']} labels: {p['accuracy']:.2f} ({p['accuracy_ci'][0]:.2f}–{p['accuracy_ci'][1]:.2f})"
                      for p in points)
    return f"**{html.escape(curve['sentence'])}**\n\nThe curve's points: {shown}."
