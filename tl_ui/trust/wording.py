"""One plain sentence per estimate, for readers who are not statisticians."""
from __future__ import annotations

import math
from fractions import Fraction

from .proportions import DEFAULT_LEVEL

# Below this many examples the sentence says outright that the range is wide because data is scarce.
_FEW_EXAMPLES = 200


def _percent_range(ci) -> tuple[int, int]:
    # Round outwards so the stated range never looks tighter than the interval.
    low, high = float(ci[0]) * 100, float(ci[1]) * 100
    return math.floor(round(low, 6)), math.ceil(round(high, 6))


def _level_percent(level: float) -> str:
    return f"{round(level * 100, 2):g}%"


def accuracy_sentence(correct: int, n: int, ci: tuple[float, float], noun: str = "held-out examples") -> str:
    """E.g. 'Right on 38 of 40 held-out examples. With this few examples the true accuracy is ...'.

    All right (or all wrong) says why the interval still has a width: 'Right on all 80 test examples;
    with 80 examples that still allows a true accuracy as low as 95%.'"""
    if n <= 0:
        return f"There are no {noun}, so the accuracy cannot be estimated yet."
    low, high = _percent_range(ci)
    if correct >= n:
        return (f"Right on all {n} {noun}; with {_examples(n)} that still allows a true accuracy "
                f"as low as {low}%.")
    if correct <= 0:
        return (f"Wrong on all {n} {noun}; with {_examples(n)} that still allows a true accuracy "
                f"as high as {high}%.")
    lead = "With this few examples the true accuracy" if n < _FEW_EXAMPLES else "The true accuracy"
    return f"Right on {correct} of {n} {noun}. {lead} is probably between {low}% and {high}%."


def _examples(n: int) -> str:
    return "1 example" if n == 1 else f"{n} examples"


def floor_sentence(name: str, value: float, n: int, ci, noun: str = "test examples") -> str:
    """Why an interval was widened to what n examples allow (trust.floors), e.g. 'Macro-F1 was 100%
    on the 40 test examples; with 40 examples that still allows a true macro-F1 as low as 91%.'"""
    low, high = _percent_range(ci)
    name_lower = name   # as written mid-sentence: "macro-F1", "Hamming loss"
    lead = f"{name[:1].upper()}{name[1:]}"
    if value >= 1 - 1e-9:
        return (f"{lead} was 100% on the {n} {noun}; with {_examples(n)} that still allows a true "
                f"{name_lower} as low as {low}%.")
    if value <= 1e-9:
        return (f"{lead} was 0% on the {n} {noun}; with {_examples(n)} that still allows a true "
                f"{name_lower} as high as {high}%.")
    return (f"Resampling the {n} {noun} understates how uncertain {name_lower} is this close to the end of "
            f"the scale, so its interval is widened to what {_examples(n)} allow ({low}%–{high}%).")


def cv_floor_sentence(accuracy: float, n: int, ci) -> str:
    """Why a cross-validated accuracy's interval is wider than its folds' spread (trust.floors)."""
    low, high = _percent_range(ci)
    if accuracy >= 1 - 1e-9:
        return (f"Every split was right on every example; with {_examples(n)} that still allows a true "
                f"accuracy as low as {low}%.")
    if accuracy <= 1e-9:
        return (f"Every split was wrong on every example; with {_examples(n)} that still allows a true "
                f"accuracy as high as {high}%.")
    return (f"That range is as wide as {_examples(n)} require ({low}%–{high}%); the splits alone varied "
            "less.")


def ece_sentence(ece: float, ci, n: int, when: str = "after calibration") -> str:
    """'With 40 test examples, a calibration error anywhere from 0 to 8.7 points cannot be ruled out
    after calibration.' (trust.calibration.ece_interval)."""
    low, high = 100 * float(ci[0]), 100 * float(ci[1])
    low_text = "0" if low < 0.05 else f"{math.floor(low * 10) / 10:.1f}"
    return (f"With {_examples(n)}, a calibration error anywhere from {low_text} to "
            f"{math.ceil(high * 10) / 10:.1f} points cannot be ruled out {when}.")


def temperature_sentence(calibration: dict) -> str:
    """What happened to the temperature (trust.calibration.temperature_fit's note), or a plain
    sentence for runs recorded before the fit was bounded."""
    if calibration.get("temperature_note"):
        return str(calibration["temperature_note"])
    if calibration.get("temperature") is None:
        return ""
    return "Chosen on the validation examples."


def interval_sentence(name: str, value: float, ci, level: float = DEFAULT_LEVEL) -> str:
    """E.g. 'Macro-F1 0.83 (95% interval 0.71–0.92).'"""
    return f"{name} {value:.2f} ({_level_percent(level)} interval {float(ci[0]):.2f}–{float(ci[1]):.2f})."


def _times_in(level: float) -> str:
    share = Fraction(level).limit_denominator(100)  # 0.9 -> 9/10, 0.95 -> 19/20
    times = "time" if share.numerator == 1 else "times"
    return f"{share.numerator} {times} in {share.denominator}"


def set_sentence(class_names: list[str], level: float) -> str:
    """Describe a conformal prediction set: one confident class, or the few it hesitates between."""
    if not class_names:
        return "The model could not suggest any class."
    if len(class_names) == 1:
        return f"{class_names[0]} — at the {_level_percent(level)} level the model is confident in this one class."
    return (f"one of: {', '.join(class_names)} — the model is not sure between these {len(class_names)}; "
            f"the right class is among them {_times_in(level)}.")
