"""What the Data and Results steps show for multi-label data (issue 15): per-label counts and which
labels occur together; micro- and macro-F1 with intervals and a plain sentence each, the per-label
table (threshold, precision, recall, F1, average precision, TP / FP / FN / TN). Pure functions of the
summary / metrics.json; no torch."""
from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from tl_ui.ui.evidence import run_title
from tl_ui.ui.formatting import fmt_seconds, pct_ci

PER_LABEL_COLUMNS = ["label", "threshold", "precision (95% interval)", "recall (95% interval)", "F1",
                     "average precision", "TP / FP / FN / TN", "in words"]
PER_LABEL_WIDTHS = ["11%", "8%", "14%", "14%", "6%", "9%", "12%", "26%"]


def data_step_md(block: dict) -> str:
    """The Data step's multi-label paragraph: labels per example and the pairs that occur together."""
    pairs = ", ".join(f"`{html.escape(p['labels'][0])}` + `{html.escape(p['labels'][1])}` ({p['n']})"
                      for p in block.get("co_occurrence", [])[:8])
    source = block.get("source") or {}
    how = (f"labels separated by `{html.escape(source.get('separator', ''))}` in column "
           f"`{html.escape(str(source.get('column', '')))}`" if source.get("form") == "separator" else
           f"0/1 columns {', '.join('`' + html.escape(c) + '`' for c in source.get('columns', []))}")
    lines = [f"**Multi-label data** ({how}): {html.escape(block['sentence'])}"]
    lines.append(f"Labels that occur together: {pairs}." if pairs else "No two labels occur together.")
    return "\n\n".join(lines)


def headline_md(run_id: str, config: dict, metrics: dict) -> str:
    block = metrics["multilabel"]
    level = float(block.get("ci_level") or 0.95)
    sentences = block.get("sentences") or {}
    lines = [run_title(run_id, config), "",
             f"#### Micro-F1: {pct_ci(block['micro_f1'], block.get('micro_f1_ci'), level)}",
             html.escape(sentences.get("micro_f1", "")), "",
             f"#### Macro-F1: {pct_ci(block['macro_f1'], block.get('macro_f1_ci'), level)}",
             html.escape(sentences.get("macro_f1", ""))]
    evaluation = (metrics.get("evaluation") or {}).get("sentence")
    if evaluation:
        lines += ["", f"*{html.escape(str(evaluation))}*"]
    lines += ["", "Each label has its own score; a label is given when its score reaches that label's threshold "
                  "(chosen on the validation examples, 0.5 where they held too few of it)."]
    return "\n".join(lines)


def overview_df(metrics: dict, config: dict, run_seconds=None) -> pd.DataFrame:
    block = metrics["multilabel"]
    level = float(block.get("ci_level") or 0.95)
    mean_ap = block.get("mean_average_precision")
    rows = [("Micro-F1 (every label decision counts the same)", pct_ci(block["micro_f1"], block["micro_f1_ci"], level)),
            ("Macro-F1 (every label counts the same)", pct_ci(block["macro_f1"], block["macro_f1_ci"], level)),
            ("Subset accuracy (all labels of an example right)",
             pct_ci(block["subset_accuracy"], block["subset_accuracy_ci"], level)),
            ("Hamming loss (share of wrong label decisions)",
             pct_ci(block["hamming_loss"], block["hamming_loss_ci"], level)),
            ("Mean average precision (ranking, no threshold)",
             "–" if mean_ap is None else pct_ci(mean_ap, block.get("mean_average_precision_ci"), level)),
            ("Test examples (the numbers above)", str(block["n"])),
            ("Validation examples (epoch, thresholds chosen on)",
             str((metrics.get("evaluation") or {}).get("n_chosen", "–"))),
            ("Training examples", str(metrics.get("n_train", "–"))), _fit_row(metrics),
            ("Model", str(config.get("model_id", "–"))), ("Strategy", str(config.get("strategy", "–")))]
    if run_seconds is not None:
        rows.append(("Time: whole run (with loading, evaluating and saving)", fmt_seconds(run_seconds)))
    return pd.DataFrame(rows, columns=["metric", "value"])


def _fit_row(metrics: dict) -> tuple[str, str]:
    fit = metrics.get("probe_fit")
    if fit and fit.get("C"):
        return ("Last layer fitted (one logistic regression per label)",
                "strength C per label " + ", ".join(f"{c:g}" for c in fit["C"]) + ", chosen by cross-validation "
                "on the training examples")
    return ("Best epoch", str(metrics.get("best_epoch", "–")))


def per_label_df(metrics: dict) -> pd.DataFrame:
    rows = []
    for name, m in metrics["multilabel"]["per_label"].items():
        ap = m.get("average_precision")
        rows.append((name, f"{m['threshold']:.2f}", pct_ci(m["precision"], m["precision_ci"], short=True),
                     pct_ci(m["recall"], m["recall_ci"], short=True), f"{round(100 * m['f1'])}%",
                     "–" if ap is None else f"{round(100 * ap)}%", f"{m['tp']} / {m['fp']} / {m['fn']} / {m['tn']}",
                     m.get("sentence", "")))
    return pd.DataFrame(rows, columns=PER_LABEL_COLUMNS)


def results_values(run_id: str, config: dict, metrics: dict, run_seconds=None) -> dict:
    """The Results step's components that differ for a multi-label run."""
    return {
        "results_summary": headline_md(run_id, config, metrics),
        "metrics_table": gr.update(value=overview_df(metrics, config, run_seconds), visible=True),
        "per_class_table": gr.update(value=per_label_df(metrics), visible=True, label="Per label (on the test examples)",
                                     column_widths=PER_LABEL_WIDTHS),
        "calibration_summary": "Multi-label runs give each label its own sigmoid score; no temperature is fitted, "
                               "each label's threshold is chosen on the validation examples instead.",
        "conformal_summary": "", "reliability_text": "",
        "confusion_plot": "<p>Multi-label runs have one small confusion table per label: see TP / FP / FN / TN in "
                          "the per-label table.</p>",
    }


def try_md(answer: dict) -> str:
    """A multi-label try-it answer in words."""
    labels = answer.get("labels") or []
    thresholds = answer.get("thresholds") or {}
    scores = answer.get("probabilities") or {}
    given = ", ".join(f"**{html.escape(n)}** ({scores.get(n, 0):.0%} ≥ {thresholds.get(n, 0.5):.0%})" for n in labels)
    return (f"**Labels:** {given}" if labels else "**Labels:** none (no score reached its label's threshold).")


def relabel_view(view) -> None:
    """A multi-label run's Train step: its curves' score is micro-F1 (scores cut at 0.5), and the
    finished run's headline number is subset accuracy (all labels of an example right)."""
    def fix(text: str) -> str:
        return (text.replace("validation accuracy", "validation micro-F1").replace("val acc", "val micro-F1")
                .replace("Finished: accuracy", "Finished: subset accuracy (all labels right)")
                .replace("**Finished:** accuracy", "**Finished:** subset accuracy (all labels right)")
                .replace("train acc", "train micro-F1").replace(" classes · training", " labels · training"))
    view.log = [fix(line) for line in view.log]
    view.status = fix(view.status)
