"""Step 1 · Model: the shelf (filtered by the data's modality) and a box for any Hub id."""
from __future__ import annotations

from typing import Optional

import gradio as gr
import pandas as pd

from tl_ui.core.catalog import DEFAULT_MODEL, ModelUnavailable, get_model, list_models
from tl_ui.ui.formatting import error_md

DEFAULT_MODEL_ID = DEFAULT_MODEL["image"]
SHELF_COLUMNS = ["Model", "Reads", "Weights", "Offline", "Good for", "Licence"]
SHELF_WIDTHS = ["20%", "8%", "9%", "13%", "38%", "12%"]


def shelf_entries(modality: Optional[str], offline_mode: bool):
    return list_models(modality, offline_only=offline_mode)


def shelf_table(modality: Optional[str], offline_mode: bool) -> pd.DataFrame:
    rows = []
    for e in shelf_entries(modality, offline_mode):
        rows.append([
            e.display_name,
            "images" if e.modality == "image" else "texts",
            f"{e.params_m:g}M" if e.params_m else "?",
            "yes" if e.offline else "no (downloads)",
            e.description,
            e.licence,
        ])
    return pd.DataFrame(rows, columns=SHELF_COLUMNS)


def shelf_choices(modality: Optional[str], offline_mode: bool) -> list[tuple[str, str]]:
    from tl_ui.core.catalog import hub_known_unreachable

    # the server checks the Hub in the background at start (remembered a few minutes)
    online = " · unavailable: no internet here" if hub_known_unreachable() else " · needs internet"
    return [(f"{e.display_name}{'' if e.offline else online}", e.id) for e in shelf_entries(modality, offline_mode)]


def build(offline_mode: bool) -> dict:
    gr.Markdown(
        "### Step 1 · Choose a pretrained model\n"
        "A pretrained model already knows a lot about pictures or language. Transfer Lab adapts it to "
        "**your** classes. The models with *Offline: yes* are installed on this computer. "
        "Once you load data in step 2, this list shows only the models that can read that kind of data.",
        elem_classes="tl-step-intro",
    )
    shelf = gr.Dataframe(value=shelf_table(None, offline_mode), interactive=False, wrap=True,
                         label="Model shelf", elem_id="model-shelf", max_height=320,
                         column_widths=SHELF_WIDTHS)
    gr.Markdown("*Weights*: the size of the pretrained model in millions of weights (parameters); for "
                "ImageNet models this counts their original 1000-class last layer, which Transfer Lab "
                "replaces with a small one for your classes.", elem_classes="tl-note")
    choice = gr.Radio(choices=shelf_choices(None, offline_mode), value=DEFAULT_MODEL_ID,
                      label="Model", elem_id="model-choice")
    hub = gr.Textbox(
        label="…or any Hugging Face Hub model id (optional)",
        placeholder="e.g. google-bert/bert-base-uncased or timm/resnet18.a1_in1k",
        info=("Offline mode is on: only the models above can be used." if offline_mode else
              "Leave empty to use the model chosen above. Needs an internet connection the first time."),
        elem_id="hub-id", interactive=not offline_mode,
    )
    info = gr.Markdown(model_info_md(DEFAULT_MODEL_ID, ""), elem_id="model-info")
    next_btn = gr.Button("Next: choose your data →", variant="primary", elem_id="model-next")
    return {"model_shelf": shelf, "model_choice": choice, "hub_id": hub, "model_info": info,
            "model_next": next_btn}


def chosen_model_id(choice: Optional[str], hub_id: Optional[str]) -> str:
    return (hub_id or "").strip() or (choice or DEFAULT_MODEL_ID)


def model_info_md(choice: Optional[str], hub_id: Optional[str], modality: Optional[str] = None) -> str:
    model_id = chosen_model_id(choice, hub_id)
    try:
        entry = get_model(model_id, modality)
    except ModelUnavailable as exc:
        return error_md(str(exc))
    kind = "images" if entry.modality == "image" else "texts"
    size = ""
    if entry.params_m:
        size = f" · {entry.params_m:g}M weights"
        if entry.modality == "image" and "ImageNet" in entry.display_name:
            size += (" (counted with its original 1000-class ImageNet last layer; Transfer Lab replaces "
                     "that layer with a small one for your classes, so step 3 counts fewer)")
    where = "installed on this computer" if entry.offline else "downloaded from the Hugging Face Hub on first use"
    return f"**Selected:** {entry.display_name} — reads {kind}{size} · {where}."


def _display_name(model_id: Optional[str]) -> str:
    """The shelf's name of a model ("MiniLM-L6 …", not "minilm_l6"); the id itself if unknown."""
    try:
        return get_model(model_id).display_name if model_id else "–"
    except (KeyError, ValueError, ModelUnavailable):
        return str(model_id)


def filtered_updates(modality: Optional[str], current: Optional[str], offline_mode: bool):
    """(shelf table, radio update, note) after data of `modality` was loaded."""
    choices = shelf_choices(modality, offline_mode)
    ids = [c[1] for c in choices]
    note = ""
    value = current
    if current not in ids:
        value = DEFAULT_MODEL.get(modality or "image", ids[0] if ids else None)
        if value not in ids:
            value = ids[0] if ids else None
        if current:
            note = (f"The model was switched to **{_display_name(value)}** because your data are "
                    f"{'images' if modality == 'image' else 'texts'}.")
    return shelf_table(modality, offline_mode), gr.update(choices=choices, value=value), note
