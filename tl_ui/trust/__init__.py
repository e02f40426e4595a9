"""Honest numbers: intervals, calibration, conformal prediction sets, per-group metrics, plain wording.

Pure numpy / scipy / scikit-learn / statsmodels / fairlearn (no torch, no gradio), so the engine and
the service layer can both use it.
"""
from .calibration import (ece_interval, expected_calibration_error, fit_temperature, reliability_bins, softmax,
                          temperature_fit)
from .conformal import conformal_threshold, min_calibration_size, prediction_sets, set_coverage_and_size
from .floors import at_least_as_share, at_least_wilson, floored
from .groups import group_metrics
from .intervals import bootstrap_macro_f1_ci, cv_probe_estimate, paired_bootstrap_accuracy_diff
from .proportions import DEFAULT_LEVEL, wilson_interval
from .wording import (accuracy_sentence, ece_sentence, floor_sentence, interval_sentence, set_sentence,
                      temperature_sentence)

__all__ = [
    "DEFAULT_LEVEL",
    "wilson_interval", "bootstrap_macro_f1_ci", "paired_bootstrap_accuracy_diff", "cv_probe_estimate",
    "at_least_wilson", "at_least_as_share", "floored",
    "softmax", "fit_temperature", "temperature_fit", "expected_calibration_error", "ece_interval", "reliability_bins",
    "conformal_threshold", "prediction_sets", "set_coverage_and_size", "min_calibration_size",
    "group_metrics",
    "accuracy_sentence", "interval_sentence", "set_sentence", "floor_sentence", "ece_sentence",
    "temperature_sentence",
]
