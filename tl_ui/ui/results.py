"""Step 5 · Results: metrics, confusion heat map, per-class table, confident mistakes, try-it, downloads."""
from __future__ import annotations

import html
import shlex
from pathlib import Path
from typing import Optional

import gradio as gr
import pandas as pd

from tl_ui.runfolder import RunFolder
from tl_ui.ui.helpers import confusion_html, fmt_count, fmt_pct, fmt_seconds, fmt_share, thumbnail


def build() -> dict:
    gr.Markdown(
        "### Step 5 · Results\n"
        "How well does the model do on the validation examples it never trained on? Try it on new "
        "examples and download it to use elsewhere.",
        elem_classes="tl-step-intro",
    )
    with gr.Row():
        runs = gr.Dropdown(choices=[], value=None, label="Previous runs", elem_id="previous-runs",
                           scale=4, allow_custom_value=False)
        refresh = gr.Button("↻ Refresh list", elem_id="refresh-runs", scale=1)
    headline = gr.Markdown("No results yet: train a model in step 4, or pick a previous run.",
                           elem_id="results-summary")
    with gr.Row():
        metrics = gr.Dataframe(label="Overall", interactive=False, elem_id="metrics-table", scale=5,
                               wrap=True, column_widths=["52%", "48%"], max_height=560)
        per_class = gr.Dataframe(label="Per class", interactive=False, elem_id="per-class-table", scale=4,
                                 wrap=True, max_height=560)
    gr.Markdown("**Confusion matrix** — how often each true class (row) was predicted as each class (column).")
    confusion = gr.HTML("", elem_id="confusion-plot")
    gr.Markdown("**Most confident mistakes** — the validation examples the model got wrong while being most sure.")
    mistakes_gallery = gr.Gallery(label="Most confident mistakes", columns=6, height="auto", visible=False,
                                  elem_id="mistakes-gallery", elem_classes="tl-mistakes")
    mistakes_table = gr.Dataframe(label="Most confident mistakes", interactive=False, visible=False,
                                  wrap=True, elem_id="mistakes-table", column_widths=["14%", "14%", "8%", "64%"])
    with gr.Group():
        gr.Markdown("**Try it** — give the model a new example.")
        with gr.Row():
            try_image = gr.Image(type="filepath", label="An image", visible=True, elem_id="try-image",
                                 sources=["upload", "clipboard"], height=220)
            try_text = gr.Textbox(label="A text", lines=3, visible=False, elem_id="try-text")
            try_out = gr.Label(num_top_classes=5, label="What the model thinks", elem_id="try-output")
        try_btn = gr.Button("Predict", elem_id="try-btn")
        try_error = gr.Markdown("", elem_id="try-error")
    gr.Markdown("**Downloads** — the model folder works with the ordinary `timm` / `transformers` "
                "libraries; `run.json` replays this run from the command line.")
    with gr.Row():
        dl_model = gr.DownloadButton("Download model (.zip)", value=None, interactive=False,
                                     elem_id="download-model")
        dl_json = gr.DownloadButton("Download run.json", value=None, interactive=False,
                                    elem_id="download-run-json")
        dl_card = gr.DownloadButton("Download model card", value=None, interactive=False,
                                    elem_id="download-card")
    replay = gr.Markdown("", elem_id="replay-command")
    return {"previous_runs": runs, "refresh_runs": refresh, "results_summary": headline,
            "metrics_table": metrics, "per_class_table": per_class, "confusion_plot": confusion,
            "mistakes_gallery": mistakes_gallery, "mistakes_table": mistakes_table,
            "try_image": try_image, "try_text": try_text, "try_output": try_out, "try_btn": try_btn,
            "try_error": try_error, "download_model": dl_model, "download_run_json": dl_json,
            "download_card": dl_card, "replay_command": replay}


OUTPUT_KEYS = ["results_summary", "metrics_table", "per_class_table", "confusion_plot", "mistakes_gallery",
               "mistakes_table", "try_image", "try_text", "try_output", "download_model",
               "download_run_json", "download_card", "replay_command"]


def metrics_df(metrics: dict, config: dict, run_seconds: Optional[float] = None) -> pd.DataFrame:
    rows = [
        ("Validation accuracy", fmt_pct(metrics.get("accuracy"))),
        ("Macro F1 (classes weighted equally)", fmt_pct(metrics.get("macro_f1"))),
    ]
    if metrics.get("majority_baseline_accuracy") is not None:
        rows.append(("Always guessing the largest class", fmt_pct(metrics.get("majority_baseline_accuracy"))))
    rows += [
        ("Validation examples", str(metrics.get("n_val", "–"))),
        ("Training examples", str(metrics.get("n_train", "–"))),
        ("Best epoch", str(metrics.get("best_epoch", "–"))),
        ("Model", str(config.get("model_id", metrics.get("model_id", "–")))),
        ("Strategy", str(config.get("strategy", metrics.get("strategy", "–")))),
    ]
    if metrics.get("trainable_params"):
        share = metrics["trainable_params"] / max(metrics.get("total_params") or 1, 1)
        rows.append(("Weights trained", f"{fmt_count(int(metrics['trainable_params']))} of "
                                        f"{fmt_count(int(metrics.get('total_params') or 0))} ({fmt_share(share)})"))
    if metrics.get("train_seconds") is not None:
        rows.append(("Time: training loop", fmt_seconds(metrics.get("train_seconds"))))
    if run_seconds is not None:
        rows.append(("Time: whole run (with loading and saving)", fmt_seconds(run_seconds)))
    if config.get("random_init"):
        rows.append(("Scratch baseline", "yes (random starting weights)"))
    return pd.DataFrame(rows, columns=["metric", "value"])


def per_class_df(metrics: dict) -> pd.DataFrame:
    rows = [
        (name, round(v.get("precision", 0), 3), round(v.get("recall", 0), 3), round(v.get("f1", 0), 3),
         int(v.get("support", 0)))
        for name, v in (metrics.get("per_class") or {}).items()
    ]
    return pd.DataFrame(rows, columns=["class", "precision", "recall", "f1", "examples"])


def empty_outputs(message: str):
    hide = gr.update(visible=False, value=None)
    off = gr.update(value=None, interactive=False)
    return (message, None, None, "", hide, hide, gr.update(), gr.update(), None, off, off, off, "")


def results_outputs(lab, owner, run: RunFolder):
    """Everything the Results step shows for one of the owner's runs, in OUTPUT_KEYS order."""
    run_dir = run.path
    status, config, metrics = run.status(), run.config(), run.metrics()
    state = status.get("state", "unknown")
    if not metrics:
        msg = {
            "running": "This run is still training; its results appear here when it finishes.",
            "interrupted": "This run was interrupted (the server stopped while it was going on). "
                           "Start it again in step 4.",
            "stopped": "This run was stopped before it finished, so there are no results. Start a new run in step 4.",
            "failed": f"This run failed: {status.get('message', '')}",
        }.get(state, "This run has no results.")
        return empty_outputs(msg)

    modality = run.modality() or "image"
    classes = metrics.get("classes") or []
    headline = (f"**Run {html.escape(run_dir.name)}** · {html.escape(str(config.get('model_id', '')))} · "
                f"{html.escape(str(config.get('strategy', '')))} · validation accuracy "
                f"**{fmt_pct(metrics.get('accuracy'))}** on {metrics.get('n_val', '?')} examples")
    base = metrics.get("majority_baseline_accuracy")
    if base is not None:
        headline += f" (always guessing the largest class would score {fmt_pct(base)})"

    mistakes = metrics.get("mistakes") or []
    if modality == "image":
        folder = lab.private.new_folder(owner, "mistakes")
        items = []
        for k, m in enumerate(mistakes[:12]):
            thumb = thumbnail(m.get("item", ""), folder, f"mistake-{k}")
            if thumb is not None:
                items.append((str(thumb), mistake_caption(m)))
        gallery = gr.update(value=items, visible=True)
        table = gr.update(value=None, visible=False)
    else:
        rows = [[m.get("true"), m.get("predicted"), f"{m.get('confidence', 0):.0%}", _short(m.get("item", ""))]
                for m in mistakes[:12]]
        gallery = gr.update(value=None, visible=False)
        table = gr.update(value=pd.DataFrame(rows, columns=["true class", "predicted", "sure", "text"]),
                          visible=True)

    files = lab.private.run_downloads(owner, run_dir)

    def dl(path):
        return gr.update(value=str(path), interactive=True) if path else gr.update(value=None, interactive=False)

    replay = (
        "**Replay this run from the command line** (with the data file at the path inside `run.json`):\n\n"
        f"```\npython -m tl_ui train --config run.json --out {shlex.quote('runs/replay-' + run_dir.name)}\n```"
    )
    return (
        headline,
        metrics_df(metrics, config, _run_seconds(status)),
        per_class_df(metrics),
        confusion_html(metrics.get("confusion_matrix") or [], classes),
        gallery,
        table,
        gr.update(visible=modality == "image", value=None),
        gr.update(visible=modality == "text", value=""),
        None,
        dl(files["model"]),
        dl(files["run_json"]),
        dl(files["card"]),
        replay,
    )


def mistake_caption(m: dict) -> str:
    """'is 1, model said 7 (93%)': short enough that a gallery tile shows all of it."""
    return f"is {m.get('true')}, model said {m.get('predicted')} ({float(m.get('confidence') or 0):.0%})"


def _run_seconds(status: dict) -> Optional[float]:
    try:
        return float(status["ended"]) - float(status["started"])
    except (KeyError, TypeError, ValueError):
        return None


def _short(text: str, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def run_choices(lab, owner) -> list[tuple[str, str]]:
    return [(info.label(), info.run_id) for info in lab.list_runs(owner)]


def label_value(probs: dict[str, float]) -> dict[str, float]:
    return {str(k): float(v) for k, v in probs.items()}


def set_md(answer: dict) -> str:
    """The prediction set in plain words, under the try-it probabilities."""
    sentence = answer.get("set_sentence")
    return f"**Prediction set:** {html.escape(sentence)}" if sentence else ""
