"""Step 2's map of the data (tl_ui/engine/advisor/data_map.py), drawn with the model advisor's embeddings:
every example as a point, similar ones close together, coloured by class, and the examples whose
nearest neighbours mostly carry another label listed for a person to check."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import gradio as gr
import pandas as pd

from tl_ui.ui.formatting import short_text

KEYS = ("data_map_note", "data_map_plot", "label_problems_gallery", "label_problems_table")
SUSPECT = "possible label problem"
PROBLEM_COLUMNS = ["example", "labelled", "its nearest neighbours say", "neighbours agreeing"]


def build() -> dict:
    with gr.Group(elem_id="data-map"):
        note = gr.Markdown("", elem_id="data-map-note")
        plot = gr.ScatterPlot(value=pd.DataFrame({"x": [0.0], "y": [0.0], "class": [""], "example": [""]}),
                              x="x", y="y", color="class", tooltip=["example", "class"], visible=False,
                              title="Map of your data: similar examples lie close together",
                              x_title="map x (no units)", y_title="map y (no units)", height=380,
                              elem_id="data-map-plot")
        gallery = gr.Gallery(label="Possible label problems", columns=6, height="auto", visible=False, preview=False,
                             elem_id="label-problems-gallery")
        table = gr.Dataframe(headers=PROBLEM_COLUMNS, label="Possible label problems", visible=False,
                             interactive=False, wrap=True, elem_id="label-problems-table")
    return {"data_map_note": note, "data_map_plot": plot, "label_problems_gallery": gallery,
            "label_problems_table": table}


def cleared() -> dict:
    return {"data_map_note": "", "data_map_plot": gr.update(visible=False),
            "label_problems_gallery": gr.update(value=None, visible=False),
            "label_problems_table": gr.update(value=None, visible=False)}


def _name(item: str, modality: str) -> str:
    return Path(item).name if modality == "image" else short_text(item, 80)


def frame(result: dict, modality: str) -> pd.DataFrame:
    """The plot's rows: one per example; suspects form their own series so they stand out."""
    rows = [{"x": p["x"], "y": p["y"], "class": SUSPECT if p["suspect"] else p["label"],
             "example": f"{_name(p['item'], modality)} (labelled {p['label']})"} for p in result["points"]]
    return pd.DataFrame(rows, columns=["x", "y", "class", "example"])


def sentence(result: dict, model_name: str) -> str:
    """The map in words (its text alternative) and what the list means."""
    n, listed = len(result["points"]), result["n_problems"]
    head = (f"**Map of your data** ({model_name}'s view; {result['method']}): each of the {n:,} examples is a "
            "point, and examples the model sees as similar lie close together. Classes that form separate "
            "groups are easy to tell apart; groups that overlap are hard. ")
    if not listed:
        return head + (f"No example has {result['share']:.0%} or more of its {result['k']} nearest neighbours "
                       "in one other class.")
    return head + (f"**{listed} example{'s' if listed != 1 else ''} look{'' if listed != 1 else 's'} like another "
                   f"class** to {result['share']:.0%} or more of {'their' if listed != 1 else 'its'} "
                   f"{result['k']} nearest neighbours (shown as '{SUSPECT}' on the map and listed below): check "
                   "whether the label is right. Some will be right and simply unusual.")


def outcome(result: Optional[dict], model_name: str, modality: str, thumbnails: list) -> dict:
    """`thumbnails`: (png path, caption) of the listed image problems (the page's private previews)."""
    if not result or not result.get("points"):
        return cleared()
    values = {"data_map_note": sentence(result, model_name),
              "data_map_plot": gr.update(value=frame(result, modality), visible=True)}
    rows = [[_name(p["item"], modality), p["label"], p["neighbours_say"], f"{p['share']:.0%}"]
            for p in result["problems"]]
    values["label_problems_table"] = gr.update(value=pd.DataFrame(rows, columns=PROBLEM_COLUMNS),
                                               visible=bool(rows))
    values["label_problems_gallery"] = gr.update(value=thumbnails or None,
                                                 visible=bool(thumbnails) and modality == "image")
    return values
