"""Comparing runs in the Results step: the runs table, the ticked runs' validation curves overlaid,
the paired difference of two runs scored on the same examples, and the from-scratch companion."""
from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Iterable, Optional

import pandas as pd

from tl_ui.contracts import ACTIVE_STATES, RunState
from tl_ui.contracts.events import EpochEnd, RunStarted
from tl_ui.service.compare import paired_difference
from tl_ui.ui.evidence import STRATEGY_NAMES, n_reported
from tl_ui.ui.formatting import fmt_seconds, pct_ci, points, points_range

if TYPE_CHECKING:   # the page reads run folders the service opens (tl_ui/service/runs.py)
    from tl_ui.core.run_info import RunInfo
    from tl_ui.core.runfolder import RunFolder

RUNS_COLUMNS = ["started", "model", "strategy", "examples", "tested on", "accuracy (95% interval)",
                "macro-F1 (95% interval)", "time", "state"]
RUNS_WIDTHS = ["14%", "14%", "15%", "9%", "8%", "13%", "13%", "7%", "7%"]
OVERLAY_COLUMNS = ["epoch", "accuracy", "run"]
MAX_TICKED = 6
SHORT_STRATEGY = {"linear_probe": "probe", "partial": "partial", "full": "full", "lora": "LoRA", "setfit": "SetFit"}
# Okabe–Ito colours (told apart with colour blindness too); the legend names each run.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"]


def _when(info: RunInfo) -> str:
    return time.strftime("%d %b %H:%M:%S", time.localtime(info.started)) if info.started else info.run_id


def _strategy(info: RunInfo) -> str:
    name = STRATEGY_NAMES.get(info.strategy, info.strategy)
    return f"{name} · random weights" if info.random_init else name


def run_name(info: RunInfo) -> str:
    """'22 Nov 09:01:07 · linear probe · random weights' (tick boxes, sentences)."""
    return f"{_when(info)} · {_strategy(info)}"


def legend_name(info: RunInfo) -> str:
    """Short enough for a plot legend (it cuts labels at about 30 characters): '09:01:07 · probe · random'."""
    when = time.strftime("%H:%M:%S", time.localtime(info.started)) if info.started else info.run_id[-6:]
    short = SHORT_STRATEGY.get(info.strategy, info.strategy)
    return f"{when} · {short}{' · random' if info.random_init else ''}"


def legend_names(infos: list[RunInfo]) -> list[str]:
    """One legend name per run, made distinct with the end of the run id where two would match."""
    names = [legend_name(i) for i in infos]
    return [f"{n} ({i.run_id[-4:]})" if names.count(n) > 1 else n for n, i in zip(names, infos)]


def runs_df(infos: Iterable[RunInfo]) -> pd.DataFrame:
    rows = [(_when(i), i.model_id, _strategy(i), i.n_examples or "–",
             i.n_reported or "–", pct_ci(i.accuracy, i.accuracy_ci, short=True),
             pct_ci(i.macro_f1, i.macro_f1_ci, short=True), fmt_seconds(i.seconds) if i.seconds else "–", i.state)
            for i in infos]
    return pd.DataFrame(rows, columns=RUNS_COLUMNS)


def tick_choices(infos: Iterable[RunInfo]) -> list[tuple[str, str]]:
    """(label, run id) of the runs that can be compared: the finished ones."""
    return [(f"{run_name(i)} · {i.model_id}", i.run_id) for i in infos if i.state == RunState.FINISHED]


def default_ticks(run_id: str, companion_id: Optional[str], choices: list[tuple[str, str]]) -> list[str]:
    """The shown run, and its from-scratch companion (`scratch_id`) once that has finished."""
    ids = {value for _, value in choices}
    return [r for r in (run_id, companion_id) if r and r in ids]


def overlay_df(runs: list[tuple[str, RunFolder]]) -> pd.DataFrame:
    """Validation accuracy per epoch of each (legend name, run) (from its events.jsonl)."""
    rows, units = [], {}
    for name, run in runs:
        for event in run.iter_events():
            if isinstance(event, RunStarted):   # a linear probe's rows are solver iterations, not epochs
                units[name] = event.unit or "epoch"
            if isinstance(event, EpochEnd) and event.val_accuracy is not None:
                rows.append((float(event.epoch), float(event.val_accuracy), name))
    frame = pd.DataFrame(rows, columns=OVERLAY_COLUMNS)
    frame.attrs["units"] = units   # read by plot_text.overlay_sentence
    return frame


def empty_overlay() -> pd.DataFrame:
    """The overlay before any run is ticked: axes, no lines."""
    return pd.DataFrame({"epoch": pd.Series(dtype=float), "accuracy": pd.Series(dtype=float),
                         "run": pd.Series(dtype=str)})[OVERLAY_COLUMNS]


def colour_map(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def paired_md(named: list[tuple[str, RunFolder]]) -> str:
    """The paired difference of exactly two ticked runs, in one sentence."""
    if len(named) != 2:
        return ("Tick **two** runs to see how much they differ on the same test examples, with its interval."
                if len(named) < 2 else "Tick exactly **two** runs to see their paired difference.")
    (name_a, a), (name_b, b) = named
    diff = paired_difference(a, b)
    if diff is None:
        return (f"**{html.escape(name_a)}** and **{html.escape(name_b)}** were not scored on the same test "
                "examples (different data, split or seed), so no paired difference can be given.")
    return (f"**{html.escape(name_a)}** minus **{html.escape(name_b)}**: {points(diff['accuracy'])} of accuracy "
            f"(95% interval {points_range(diff['ci'])}) on the same {diff['n']} test examples"
            + (" — the interval includes zero, so these examples cannot tell the two runs apart."
               if diff["ci"][0] <= 0 <= diff["ci"][1] else "."))


# -- the from-scratch companion ------------------------------------------------------------------
def scratch_id(metrics: dict, status: dict) -> Optional[str]:
    return metrics.get("scratch_run") or status.get("scratch_run")


def scratch_md(main: RunFolder, companion: Optional[RunFolder]) -> tuple[str, bool]:
    """(what the comparison box says, whether the companion is still to come).

    The numbers come from the main run's metrics.json once the service has linked the companion
    (`pretraining_gain`), else straight from the companion's folder as soon as it has finished."""
    config, metrics = main.config(), main.metrics() or {}
    if not (config.get("compare_scratch") or metrics.get("scratch_run")):
        return ("*Want to know what pretraining bought you?* Tick **Also train the same recipe from random "
                "weights** in step 3 before you start."), False
    if "pretraining_gain" in metrics:
        scratch_acc, scratch_ci, gain = (metrics.get("scratch_accuracy"), metrics.get("scratch_accuracy_ci"),
                                         metrics.get("pretraining_gain"))
    else:
        state = companion.state() if companion is not None else None
        if state is None or state in ACTIVE_STATES:
            return ("**The from-scratch comparison is still training** (the same recipe from random "
                    "weights). Its result appears here by itself when it finishes."), True
        if state != RunState.FINISHED:
            why = "its run is gone" if state == RunState.UNKNOWN else f"it was {html.escape(state)}"
            return f"The from-scratch comparison did not finish ({why}).", False
        scratch_metrics = companion.metrics() or {}
        scratch_acc, scratch_ci = scratch_metrics.get("accuracy"), scratch_metrics.get("accuracy_ci")
        gain = paired_difference(main, companion)
    if scratch_acc is None:
        return "The from-scratch comparison did not finish, so there is nothing to compare.", False
    pre = pct_ci(metrics.get("accuracy"), metrics.get("accuracy_ci"), short=True)
    lines = [f"**What pretraining bought you.** Test accuracy (95% interval) from the pretrained weights: "
             f"{pre}; the same recipe from random weights: {pct_ci(scratch_acc, scratch_ci, short=True)}."]
    if gain:
        ci = gain.get("ci")
        sentence = (f"Starting from the pretrained weights gave {points(gain['accuracy'])} of accuracy "
                    f"on the same {gain.get('n') or n_reported(metrics)} test examples")
        if ci:
            sentence += f" (95% interval {points_range(ci)})"
            if ci[0] <= 0 <= ci[1]:
                sentence += "; the interval includes zero, so these examples cannot show a real gain"
            if gain.get("floored"):
                sentence += ("; it was widened to what the examples the two runs disagree on allow, because "
                             "none went the other way")
        lines.append(sentence + ".")
    else:
        lines.append("The two runs were not scored on the same examples, so no paired difference can be given.")
    return "\n\n".join(lines), False
