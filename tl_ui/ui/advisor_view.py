"""Step 2's model advisor: "Which model suits my data?" ranks the offline models on the loaded data
(tl_ui/service/advise.py) and preselects the best in step 1's model choice; the choice stays the user's."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from tl_ui.ui.formatting import error_md

COLUMNS = ["Model", "kNN accuracy (95% interval)", "LogME", "Seconds", "Weights (millions)"]
KEYS = ("advisor_note", "advisor_table")
INTRO = ("Before training, Transfer Lab can look at your data through every model installed here and "
         "rank them: each model reads every example once (a large dataset is sampled down first), so this "
         "takes a while. Optional: you can also go straight on.")
# The one plain sentence on what the numbers mean (tl_ui.engine.advisor.ranking.MEANING says it at more length).
MEANING = ("**What the numbers mean:** *kNN accuracy* is how often an example's nearest neighbours, as the "
           "model sees them, carry the right label (measured on your own examples, cross-validated; the "
           "range is its 95% interval). *LogME* is a second such score: higher is better, and it only "
           "compares models on the same data. Both are a quick hint, not a promise: models whose ranges "
           "overlap may finish in either order after training (on our benchmark data the top-ranked model "
           "was the best or tied best after training on 2 of 3 datasets; docs/benchmarks.md). The "
           "embeddings are kept, so training the chosen model with the linear probe does not compute "
           "them again.")


def build() -> dict:
    with gr.Group(elem_id="advisor"):
        gr.Markdown("#### Which model suits my data?\n" + INTRO, elem_classes="tl-note")
        button = gr.Button("Which model suits my data?", elem_id="advisor-btn")
        note = gr.Markdown("", elem_id="advisor-note")
        table = gr.Dataframe(headers=COLUMNS, label="Models ranked for your data (best first)", visible=False,
                             interactive=False, wrap=True, elem_id="advisor-table")
    return {"advisor_btn": button, "advisor_note": note, "advisor_table": table}


def cleared() -> dict:
    """A new dataset: the old ranking no longer applies."""
    return {"advisor_note": "", "advisor_table": gr.update(value=None, visible=False)}


def table(rows: list[dict]) -> pd.DataFrame:
    shown = []
    for row in rows:
        if row.get("knn_accuracy") is None:
            shown.append([row.get("display_name") or row["model_id"], "could not be scored", "", "", ""])
            continue
        low, high = row["knn_accuracy_ci"]
        shown.append([row.get("display_name") or row["model_id"],
                      f"{row['knn_accuracy']:.1%} ({low:.1%}–{high:.1%})", f"{row['logme']:.3f}",
                      f"{row['seconds']:.1f}", f"{row.get('params_m', 0):g}"])
    return pd.DataFrame(shown, columns=COLUMNS)


def outcome(rows: list[dict], choice_ids: list[str]) -> dict:
    """The table, the sentence, and the best model preselected (when it is one of step 1's choices)."""
    scored = [r for r in rows if r.get("knn_accuracy") is not None]
    if not scored:
        return {"advisor_note": error_md("No model could be scored on these data."),
                "advisor_table": gr.update(value=table(rows), visible=True)}
    best = scored[0]
    n = best.get("n_examples")
    lead = (f"**{best.get('display_name') or best['model_id']}** suits your data best"
            f"{f' (measured on {n:,} examples)' if n else ''}")
    values = {"advisor_table": gr.update(value=table(rows), visible=True)}
    if best["model_id"] in choice_ids:
        values["model_choice"] = best["model_id"]
        lead += "; it is now selected in step 1, and you can still pick another there."
    else:
        lead += "."
    values["advisor_note"] = lead + "\n\n" + MEANING
    return values
