"""What each plot shows, in words a screen reader reads (WCAG 1.1.1): one plain sentence, and the
table behind the plot inside a <details> box (closed until opened, so it does not crowd the page).

Pure functions of what the plots are drawn from: the training curves (TrainView's per-epoch rows),
the reliability diagram (metrics.json's calibration bins), the confusion matrix and the overlay of
compared runs."""
from __future__ import annotations

import html
import math
from typing import Optional, Sequence

import pandas as pd

CURVES_WAITING = ("<div class='tl-alt'><p>The curves in words: they fill in once training starts; after each "
                  "epoch this line gives its losses and accuracies.</p></div>")


def _pct(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(value) else f"{100 * value:.1f}%"


def _num(value, digits: int = 3) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def table_html(caption: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain HTML table (first column = row headers) with a caption, all text escaped."""
    head = "".join(f"<th scope='col'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + f"<th scope='row'>{html.escape(str(row[0]))}</th>"
        + "".join(f"<td>{html.escape(str(v))}</td>" for v in row[1:]) + "</tr>"
        for row in rows)
    # a scroll box on a narrow screen: focusable, so the keyboard can scroll it (WCAG 2.1.1)
    return (f"<div class='tl-alt-scroll' tabindex='0' role='region' aria-label='{html.escape(caption, quote=True)}'>"
            f"<table><caption>{html.escape(caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def details_html(summary: str, sentence: str, columns, rows, caption: str) -> str:
    """The sentence, then the table in a closed <details> box titled `summary`."""
    table = table_html(caption, columns, rows)
    return (f"<div class='tl-alt'><p>{sentence}</p><details><summary>{html.escape(summary)}</summary>"
            f"{table}</details></div>")


# -- training curves -------------------------------------------------------------------------------
CURVE_COLUMNS = ["epoch", "training loss", "validation loss", "training accuracy", "validation accuracy"]


def curves_html(epoch_rows: list[dict], epochs: Optional[int], unit: str = "epoch") -> str:
    """The loss and accuracy curves in words: the last epoch's values, where the validation loss was
    lowest, and every epoch in a table. `epoch_rows`: one dict per finished epoch (TrainView), or
    per iteration of the probe's solver (`unit` "iteration")."""
    if not epoch_rows:
        return CURVES_WAITING
    last = epoch_rows[-1]
    of = f" of {epochs}" if epochs and unit == "epoch" else ""
    best = min(epoch_rows, key=lambda r: r["val_loss"] if _finite(r["val_loss"]) else math.inf)
    sentence = (f"The curves in words: after {unit} {last['epoch']}{of}, validation accuracy "
                f"{_pct(last['val_accuracy'])} (training {_pct(last['train_accuracy'])}), validation loss "
                f"{_num(last['val_loss'])} (training {_num(last['train_loss'])}).")
    if len(epoch_rows) > 1 and _finite(best["val_loss"]):
        sentence += f" The validation loss was lowest after {unit} {best['epoch']}."
    rows = [(r["epoch"], _num(r["train_loss"]), _num(r["val_loss"]), _pct(r["train_accuracy"]),
             _pct(r["val_accuracy"])) for r in epoch_rows]
    return details_html(f"The curves as a table (one row per {unit})", html.escape(sentence),
                        [unit, *CURVE_COLUMNS[1:]], rows, f"Loss and accuracy after each {unit}")


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# -- reliability diagram ---------------------------------------------------------------------------
RELIABILITY_TABLE_COLUMNS = ["series", "confidence (how sure)", "accuracy (how often right)", "test examples"]


def reliability_html(calibration: Optional[dict]) -> str:
    """The reliability diagram's points as a table (before and after calibration)."""
    if not calibration or not calibration.get("bins"):
        return ""
    rows = []
    for key, series in (("bins_before", "before calibration"), ("bins", "after calibration")):
        for b in calibration.get(key) or []:
            if b.get("count"):
                rows.append((series, _pct(b.get("confidence")), _pct(b.get("accuracy")), int(b["count"])))
    if not rows:
        return ""
    table = table_html("Each point of the reliability diagram: the examples the model was about this sure of",
                       RELIABILITY_TABLE_COLUMNS, rows)
    return (f"<div class='tl-alt'><details><summary>The reliability diagram as a table</summary>{table}"
            "</details></div>")


# -- confusion matrix ------------------------------------------------------------------------------
def confusion_sentence(matrix: list[list[int]], classes: list[str]) -> str:
    """'Right on 45 of 50 test examples; the most frequent mistake: 3 taken for 8 (2 times).'"""
    if not matrix or not classes:
        return ""
    total = sum(sum(row) for row in matrix)
    right = sum(matrix[i][i] for i in range(min(len(matrix), len(classes))) if i < len(matrix[i]))
    text = f"In words: right on {right} of {total} test examples (the diagonal)"
    mistakes = [(count, i, j) for i, row in enumerate(matrix) for j, count in enumerate(row) if i != j and count]
    if mistakes:
        count, i, j = max(mistakes)
        times = "once" if count == 1 else f"{count} times"
        text += (f"; the most frequent mistake: true {html.escape(classes[i])} predicted as "
                 f"{html.escape(classes[j])} ({times})")
    else:
        text += "; no mistakes"
    return text + "."


# -- runs overlay ----------------------------------------------------------------------------------
def overlay_sentence(overlay: Optional[pd.DataFrame]) -> str:
    """'In words: 09:01:07 · probe reached 91.0% validation accuracy after epoch 3; …'."""
    if overlay is None or overlay.empty:
        return ""
    parts, units = [], overlay.attrs.get("units") or {}
    for name, rows in overlay.dropna().groupby("run", sort=False):
        if rows.empty:
            continue
        unit = units.get(name) or "epoch"
        last = rows.sort_values("epoch").iloc[-1]
        best = rows.loc[rows["accuracy"].idxmax()]
        part = f"{html.escape(str(name))}: {_pct(last['accuracy'])} after {unit} {last['epoch']:g}"
        if best["accuracy"] > last["accuracy"]:
            part += f" (best {_pct(best['accuracy'])} after {unit} {best['epoch']:g})"
        parts.append(part)
    return ("In words, the validation accuracy of the ticked runs: " + "; ".join(parts) + ".") if parts else ""
