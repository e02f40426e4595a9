"""`ValidationReport`: validation.json, a finished run on another site's labelled data (issue 34), written by
tl_ui/engine/inference/validation.py into `<run>/validation/<id>/` through `RunFolder.write_validation`.
Every interval is `[low, high]` at `ci_level`; the `internal` block quotes the run's own metrics.json."""
from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field

from tl_ui.contracts.base import Block

Interval = Annotated[list[float], Field(min_length=2, max_length=2, description="[low, high]")]


class ExternalCalibration(Block):
    ece: Optional[float] = Field(description="top-label ECE of the model's calibrated probabilities on the new data")
    ece_ci: Optional[Interval] = None


class ExternalConformal(Block):
    level: Optional[float] = Field(description="the run's prediction-set level (null: the run has no sets)")
    coverage: Optional[float] = Field(description="share of new examples whose set holds the true class")
    coverage_ci: Optional[Interval] = None
    mean_set_size: Optional[float] = None


class ExternalFamiliarity(Block):
    n_flagged: Optional[int] = Field(description="new examples flagged 'unlike the training data' (null: no reference)")
    accuracy_flagged: Optional[float] = None
    accuracy_unflagged: Optional[float] = None


class Difference(Block):
    accuracy: float = Field(description="internal − external accuracy")
    accuracy_ci: Interval = Field(description="Newcombe's hybrid score interval for two independent samples")
    method: Optional[str] = None
    sentence: Optional[str] = None


class ValidationReport(Block):
    run_id: str
    data_sha256: str
    n: int = Field(description="new examples scored (labels the model knows)")
    n_excluded: int = Field(description="new examples left out: their label is not one of the model's classes")
    excluded_classes: dict[str, int] = Field(description="unknown label -> examples left out")
    missing_classes: list[str] = Field(description="the model's classes with no example in the new data")
    accuracy: Optional[float]
    accuracy_ci: Interval
    macro_f1: Optional[float]
    macro_f1_ci: Interval
    per_class: dict[str, dict] = Field(description="class -> {support, recall, recall_ci, precision, f1}")
    calibration: ExternalCalibration
    conformal: ExternalConformal
    familiarity: ExternalFamiliarity
    label_shift: dict[str, list[Optional[float]]] = Field(description="class -> [train_share, new_share]")
    internal: dict = Field(description="the run's own test numbers (metrics.json): n, accuracy, accuracy_ci, …")
    difference: Difference
    groups: Optional[dict] = Field(None, description="per-group numbers when the new data has the group column")
    operating_point: Optional[dict] = Field(None, description="AUROC and sensitivity/specificity at the run's own "
                                                              "threshold, when the run has an operating point")
