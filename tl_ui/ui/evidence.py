"""A finished run's metrics.json -> what the Results step says: every estimate with its interval
and one plain sentence (headline, overview and per-class tables, reliability diagram, prediction
sets, per-group table). Pure functions; tl_ui.trust is imported lazily (it pulls in scikit-learn)."""
from __future__ import annotations

import html
from typing import Optional

import pandas as pd

from tl_ui.ui.formatting import fmt_count, fmt_seconds, fmt_share, pct_ci, pct_range, points

STRATEGY_NAMES = {"linear_probe": "linear probe", "partial": "partial unfreezing", "full": "full fine-tuning",
                  "lora": "LoRA adapters", "setfit": "SetFit"}
AFTER, BEFORE, DIAGONAL = "after calibration", "before calibration", "perfectly calibrated"
RELIABILITY_COLORS = {AFTER: "#2563eb", BEFORE: "#ea580c", DIAGONAL: "#6b7280"}   # blue / orange / grey
RELIABILITY_COLUMNS = ["confidence", "accuracy", "series", "examples"]


def _level(metrics: dict) -> float:
    return float(metrics.get("ci_level") or 0.95)


def n_reported(metrics: dict) -> Optional[int]:
    return (metrics.get("evaluation") or {}).get("n_reported") or metrics.get("n_val")


def run_title(run_id: str, config: dict, metrics: Optional[dict] = None) -> str:
    strategy = str(config.get("strategy", ""))
    scratch = " · from random weights (scratch baseline)" if config.get("random_init") else ""
    name = STRATEGY_NAMES.get(strategy, strategy)
    chosen = ((metrics or {}).get("search") or {}).get("winner", {}).get("strategy")
    if strategy == "auto" and chosen:   # a search's run: its model is the winner's
        name = f"chosen by Transfer Lab: {STRATEGY_NAMES.get(chosen, chosen)}"
    return (f"**Run {html.escape(run_id)}** · {html.escape(str(config.get('model_id', '')))} · "
            f"{html.escape(name)}{scratch}")


def cv_sentence(cv: dict) -> str:
    """One plain sentence for the cross-validated estimate of a linear probe."""
    folds, repeats = int(cv.get("folds") or 0), int(cv.get("repeats") or 1)
    text = (f"A linear probe on this model's features, trained and tested {folds * repeats} times on "
            f"different splits of all your examples ({folds} folds × {repeats} repeats), ")
    accuracy, n = float(cv["accuracy"]), cv.get("n")
    widened = _floored(cv, "accuracy_ci") and n
    if widened and accuracy in (0.0, 1.0):   # every split scored the same: say what n still allows
        low, high = pct_range(cv["accuracy_ci"]).split("–")
        text += (f"was right on every example of every split; with {n} examples that still allows a true "
                 f"accuracy as low as {low}." if accuracy == 1.0 else
                 f"was wrong on every example of every split; with {n} examples that still allows a true "
                 f"accuracy as high as {high}.")
    else:
        text += f"was right {round(100 * accuracy)}% of the time on average"
        if cv.get("accuracy_ci"):
            text += f"; the true accuracy is probably between {pct_range(cv['accuracy_ci']).replace('–', ' and ')}"
        text += "."
        if widened:
            from tl_ui.trust.wording import cv_floor_sentence

            text += " " + cv_floor_sentence(accuracy, int(n), cv["accuracy_ci"])
    return text + (" This estimates how well the approach works on your data; the model you download is "
                   "the one tested below.")


def _floored(block: Optional[dict], name: str) -> bool:
    """Whether the block records `name` as widened to what its n allows (tl_ui.trust.floors)."""
    return bool(block) and name in (block.get("floored_intervals") or [])


def macro_f1_note(metrics: dict) -> str:
    """Why a test macro-F1's interval is wider than its bootstrap (metrics.json's own sentence, or
    one made from its numbers); '' when it was not widened."""
    if not _floored(metrics, "macro_f1_ci"):
        return ""
    if metrics.get("macro_f1_sentence"):
        return str(metrics["macro_f1_sentence"])
    n = n_reported(metrics)
    if not n or metrics.get("macro_f1") is None:
        return ""
    from tl_ui.trust.wording import floor_sentence

    return floor_sentence("macro-F1", float(metrics["macro_f1"]), int(n), metrics["macro_f1_ci"])


def test_sentence(metrics: dict) -> str:
    """The run's own plain sentence, or one made from its numbers (runs recorded before it existed)."""
    if metrics.get("accuracy_sentence"):
        return str(metrics["accuracy_sentence"])
    n, acc, ci = n_reported(metrics), metrics.get("accuracy"), metrics.get("accuracy_ci")
    if not n or acc is None or not ci:
        return ""
    from tl_ui.trust import accuracy_sentence

    return accuracy_sentence(round(float(acc) * int(n)), int(n), ci, noun="test examples")


def headline_md(run_id: str, config: dict, metrics: dict) -> str:
    """The cross-validated estimate first when there is one, else the test accuracy; each with its
    interval and plain sentence; then where the numbers come from, and macro-F1."""
    level = _level(metrics)
    lines = [run_title(run_id, config, metrics), ""]
    test = pct_ci(metrics.get("accuracy"), metrics.get("accuracy_ci"), level)
    cv = metrics.get("cross_validation")
    if cv and cv.get("accuracy") is not None:
        lines += [f"#### Cross-validated accuracy: {pct_ci(cv['accuracy'], cv.get('accuracy_ci'), level)}",
                  cv_sentence(cv), "",
                  f"#### This run's test accuracy: {test}"]
    else:
        lines.append(f"#### Test accuracy: {test}")
    sentence = test_sentence(metrics)
    if sentence:
        lines.append(html.escape(sentence))
    evaluation = (metrics.get("evaluation") or {}).get("sentence")
    if evaluation:
        lines += ["", f"*{html.escape(str(evaluation))}*"]
    if metrics.get("macro_f1") is not None:
        lines += ["", f"**Macro-F1** (every class counts the same): "
                      f"{pct_ci(metrics['macro_f1'], metrics.get('macro_f1_ci'), level)}."]
        if cv and cv.get("macro_f1") is not None:
            lines[-1] += f" Cross-validated: {pct_ci(cv['macro_f1'], cv.get('macro_f1_ci'), level)}."
        note = macro_f1_note(metrics)
        if note:
            lines[-1] += f" {html.escape(note)}"
    base = metrics.get("majority_baseline_accuracy")
    if base is not None:
        lines.append(f"Always guessing the largest class would score {round(100 * float(base))}%.")
    return "\n".join(lines)


def overview_df(metrics: dict, config: dict, run_seconds: Optional[float] = None) -> pd.DataFrame:
    level = _level(metrics)
    evaluation = metrics.get("evaluation") or {}
    rows = [("Test accuracy", pct_ci(metrics.get("accuracy"), metrics.get("accuracy_ci"), level))]
    cv = metrics.get("cross_validation")
    if cv and cv.get("accuracy") is not None:
        rows.append((f"Cross-validated accuracy ({cv.get('folds')} folds × {cv.get('repeats')}, linear probe)",
                     pct_ci(cv["accuracy"], cv.get("accuracy_ci"), level)))
    rows.append(("Macro F1 (classes weighted equally)",
                 pct_ci(metrics.get("macro_f1"), metrics.get("macro_f1_ci"), level)))
    if metrics.get("majority_baseline_accuracy") is not None:
        rows.append(("Always guessing the largest class", pct_ci(metrics["majority_baseline_accuracy"])))
    rows.append(("Test examples (the numbers above)", str(n_reported(metrics) or "–")))
    if evaluation.get("n_chosen"):
        rows.append(("Validation examples (epoch, calibration chosen on)", str(evaluation["n_chosen"])))
    rows += [
        ("Training examples", str(metrics.get("n_train", "–"))),
        _fit_row(metrics),
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
        rows.append(("Time: whole run (with loading, evaluating and saving)", fmt_seconds(run_seconds)))
    if config.get("random_init"):
        rows.append(("Scratch baseline", "yes (random starting weights)"))
    return pd.DataFrame(rows, columns=["metric", "value"])


PER_CLASS_COLUMNS = ["class", "precision (95% interval)", "recall (95% interval)", "F1", "test examples"]


def per_class_df(metrics: dict) -> pd.DataFrame:
    rows = [
        (name, pct_ci(v.get("precision"), v.get("precision_ci"), short=True),
         pct_ci(v.get("recall"), v.get("recall_ci"), short=True), f"{round(100 * float(v.get('f1') or 0))}%",
         int(v.get("support", 0)))
        for name, v in (metrics.get("per_class") or {}).items()
    ]
    return pd.DataFrame(rows, columns=PER_CLASS_COLUMNS)


# -- calibration ---------------------------------------------------------------------------------
def reliability_df(calibration: Optional[dict]) -> Optional[pd.DataFrame]:
    """Confidence vs accuracy per bin, before and after calibration, plus the diagonal."""
    if not calibration or not calibration.get("bins"):
        return None
    rows = [(0.0, 0.0, DIAGONAL, None), (1.0, 1.0, DIAGONAL, None)]
    for key, series in (("bins_before", BEFORE), ("bins", AFTER)):
        points_ = [(float(b["confidence"]), float(b["accuracy"]), series, int(b["count"]))
                   for b in calibration.get(key) or [] if b.get("count")]
        # every series present (a blank row if need be): the plot fixes its legend from its first rows
        rows += points_ or [(float("nan"), float("nan"), series, None)]
    return pd.DataFrame(rows, columns=RELIABILITY_COLUMNS)


def empty_reliability_df() -> pd.DataFrame:
    """The reliability diagram before there is a run: axes and legend, no points (every series
    present as a blank row: the plot fixes its legend from its first rows)."""
    nan = float("nan")
    return pd.DataFrame([(nan, nan, series, None) for series in (AFTER, BEFORE, DIAGONAL)],
                        columns=RELIABILITY_COLUMNS)


def calibration_md(calibration: Optional[dict], metrics: dict) -> str:
    """The calibration error before and after, what that many test examples cannot rule out, and
    how the temperature was chosen (fitted, limited, or kept at 1: tl_ui.trust.calibration)."""
    if not calibration:
        return "This run has no calibration record."
    from tl_ui.trust.wording import ece_sentence, temperature_sentence

    before, after = calibration.get("ece_before"), calibration.get("ece_after")
    n = n_reported(metrics)
    where = f"these {n} test examples" if n else "the test examples"
    parts = []
    if before is not None and after is not None:
        parts.append(f"On {where} the model's confidence was off from how often it was right by "
                     f"{100 * float(before):.1f} percentage points on average before calibration and "
                     f"{100 * float(after):.1f} after (expected calibration error).")
        if calibration.get("ece_sentence"):
            parts.append(str(calibration["ece_sentence"]))
        elif calibration.get("ece_after_ci") and n:
            parts.append(ece_sentence(float(after), calibration["ece_after_ci"], int(n)))
    temperature = calibration.get("temperature")
    if temperature:
        note = temperature_sentence(calibration)
        parts.append(f"**Temperature {float(temperature):.2f}.** {html.escape(note)}")
        kept = abs(float(temperature) - 1.0) < 1e-9
        parts.append("The probabilities shown here and in the download are the model's own (not rescaled)."
                     if kept else "The probabilities shown here and in the download are the calibrated ones.")
    return " ".join(parts).strip()


# -- prediction sets -------------------------------------------------------------------------------
def conformal_md(conformal: Optional[dict], metrics: dict) -> str:
    """'At the 90% level the set held the right class for 94% of 50 test examples, with 1.3 classes on average.'"""
    if not conformal:
        return ""
    level = float(conformal.get("level") or 0.9)
    if conformal.get("coverage") is None:
        note = conformal.get("note") or "there were too few examples to set them."
        return f"**Prediction sets:** {html.escape(str(note))}"
    n = n_reported(metrics)
    text = (f"**Prediction sets:** at the {level:.0%} level the set held the right class for "
            f"{round(100 * float(conformal['coverage']))}% of {n or 'the'} test examples")
    if conformal.get("coverage_ci"):
        text += f" ({_level(metrics):.0%} interval {pct_range(conformal['coverage_ci'])})"
    size = conformal.get("mean_set_size")
    if size is not None:
        text += f", with {float(size):.1f} classes on average"
    return text + (". When the model is unsure, *Try it* below names every class it hesitates between, "
                   "instead of one guess.")


# -- per-group -------------------------------------------------------------------------------------
GROUP_COLUMNS = ["group", "test examples", "accuracy (95% interval)", "macro-F1", "weakest class: recall",
                 "note"]


def group_df(groups: Optional[dict]) -> Optional[pd.DataFrame]:
    by_group = (groups or {}).get("by_group") or {}
    if not by_group:
        return None
    rows = []
    for name, g in by_group.items():
        known = [(c, r) for c, r in (g.get("recall") or {}).items() if r.get("value") is not None]
        weakest = ""
        if known:
            cls, r = min(known, key=lambda item: item[1]["value"])
            weakest = f"{cls}: {pct_ci(r['value'], r.get('ci'), short=True)} of {r.get('n')}"
        rows.append((name, int(g.get("n") or 0), pct_ci(g.get("accuracy"), g.get("accuracy_ci"), short=True),
                     f"{round(100 * float(g.get('macro_f1') or 0))}%", weakest,
                     "few examples: very uncertain" if g.get("few_examples") else ""))
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def group_md(groups: Optional[dict]) -> str:
    if not groups or not groups.get("by_group"):
        return ""
    lines = [f"**Per group** (column `{html.escape(str(groups.get('column') or ''))}`): does the model work "
             "worse for some sites, scanners or sources?"]
    gap = groups.get("max_gap") or {}
    between = [str(g) for g in gap.get("between") or []]
    if len(between) == 2 and between[0] != between[1]:
        lines.append(f"The largest accuracy gap is {points(float(gap.get('accuracy') or 0)).lstrip('+')}, "
                     f"between {html.escape(between[0])} (best) and {html.escape(between[1])} (worst).")
    for warning in groups.get("warnings") or []:
        lines.append(f"- ⚠️ {html.escape(str(warning))}")
    return "\n\n".join(lines)


def _fit_row(metrics: dict) -> tuple[str, str]:
    """The kept weights: an epoch, or for the probe's full-batch head its solver iterations and L2 strength."""
    fit = metrics.get("probe_fit")
    if fit and fit.get("l2") is not None:   # (a multi-label probe records C per label instead)
        cv = fit.get("inner_cv")
        how = (f"chosen by {cv.get('folds')}-fold cross-validation on the training examples" if cv else
               "the usual default (too few examples per class to cross-validate)")
        return ("Last layer fitted (full-batch solver)",
                f"{fit.get('iterations')} iterations; L2 strength {fit.get('l2'):g}, {how}")
    return ("Best epoch", str(metrics.get("best_epoch", "–")))
