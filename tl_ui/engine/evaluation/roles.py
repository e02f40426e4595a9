"""Which examples do what: train, choose, report.

No number a user sees is measured on the data that chose it. Every run splits its examples
(stratified by label, with a fixed seed) into three disjoint roles:

* **train**  – the model learns from these;
* **choose** – the "validation" examples: the epoch kept by early stopping, the calibration
  temperature and the prediction-set thresholds are chosen on them (the training curves show them);
* **report** – the "test" examples: the headline numbers, intervals, calibration error after
  scaling, prediction-set coverage and per-group metrics are measured on them and on nothing else.

`report` takes `val_fraction` of all examples, `choose` the same share of the rest. The
benchmark (docs/benchmarks.md, section "held-out roles") measured what the old design (choose and
report on the same examples) overstates and what the three-way split costs; `same_set` remains
only so that the benchmark can measure that optimism, and the app never offers it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tl_ui.data import DataError, LabelledDataset, stratified_split

DESIGNS = ("three_way", "same_set")
DEFAULT_DESIGN = "three_way"

CHOSEN_ON_CHOOSE_SET = ["epoch (early stopping)", "temperature (calibration)", "prediction-set thresholds"]


@dataclass(frozen=True)
class Roles:
    design: str
    train: np.ndarray
    choose: np.ndarray
    report: np.ndarray

    def describe(self) -> dict:
        """metrics.json's `evaluation` record."""
        same = self.design == "same_set"
        return {
            "design": self.design,
            "reported_on": "validation" if same else "test",
            "n_reported": int(len(self.report)),
            "chosen_on": "validation",
            "n_chosen": int(len(self.choose)),
            "chosen": CHOSEN_ON_CHOOSE_SET,
            "sentence": (
                "These numbers come from the same examples that chose the epoch and the calibration, "
                "so they are optimistic." if same else
                f"The numbers below come from {len(self.report)} test examples that took no part in "
                f"training or in any choice; the epoch, the calibration and the prediction-set threshold "
                f"were chosen on {len(self.choose)} other validation examples."),
        }


def split_roles(dataset: LabelledDataset, val_fraction: float, seed: int, design: str = DEFAULT_DESIGN) -> Roles:
    if design not in DESIGNS:
        raise ValueError(f"unknown evaluation design {design!r}")
    rest, report = stratified_split(dataset, val_fraction, seed)
    if design == "same_set":
        return Roles(design, rest, report, report)
    inner_train, inner_choose = stratified_split(dataset.subset(rest), val_fraction, seed + 1)
    roles = Roles(design, rest[inner_train], rest[inner_choose], report)
    if min(len(roles.train), len(roles.choose), len(roles.report)) == 0:
        raise DataError(
            f"{len(dataset)} examples in {len(dataset.classes)} classes are too few to train on some, choose "
            f"the epoch on others and test on still others ({len(roles.train)} / {len(roles.choose)} / "
            f"{len(roles.report)}). Add examples: at least 3 per class, better 10 or more.")
    return roles
