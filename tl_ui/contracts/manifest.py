"""`ExportManifest`: model/transfer_lab.json, what an export adds to the timm / transformers /
sentence-transformers files (tl_ui/engine/export/folder.py writes it through this model; `Predictor`,
continuation and the run folder read it)."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import Field

from tl_ui.contracts.base import Block


class ManifestConformal(Block):
    method: str = "LAC"
    thresholds: dict[str, Optional[float]] = Field(
        description="prediction-set threshold per level ('0.8', '0.9', '0.95'); null: too few validation examples")
    n_calibration: int
    default_level: Optional[float] = None


class ManifestMultiLabel(Block):
    problem_type: str = "multi_label_classification"
    activation: str = "sigmoid"
    thresholds: dict[str, float] = Field(description="score threshold per label, chosen on the validation examples")
    threshold_choice: Optional[list[str]] = None


class ManifestOperatingPoint(Block):
    """The saved operating point (issue 33): an input is called positive when its (calibrated) probability
    of `positive_class` is at least `threshold`, chosen on the validation examples by `rule`."""
    positive_class: str
    threshold: float
    rule: str = Field(description="'sensitivity', 'specificity', 'youden' or 'threshold' (fixed by hand)")
    target: Optional[float] = Field(None, description="the rule's target (sensitivity or specificity share, or the fixed threshold)")
    chosen_on: Optional[str] = Field(None, description="'validation', 'fixed', or 'site' (refitted on half of a new "
                                                       "site's data, issue 34)")


class ExportManifest(Block):
    format: str = Field(description="'timm', 'transformers' or 'sentence-transformers': how to load model/")
    modality: str = Field(description="'image' or 'text'")
    classes: list[str] = Field(description="class (label) names in the output order")
    base_model: Optional[str] = None
    strategy: Optional[str] = None
    image_size: Optional[int] = None
    image_window: Optional[str] = Field(None, description="DICOM display window preset; null: each file's own")
    image_reading: Optional[dict[str, Any]] = None
    max_length: Optional[int] = None
    temperature: Optional[float] = Field(None, description="already folded into the classifier layer")
    conformal: Optional[ManifestConformal] = None
    multilabel: Optional[ManifestMultiLabel] = None
    operating_point: Optional[ManifestOperatingPoint] = None
    site_temperature: Optional[float] = Field(
        None, description="a version recalibrated for a new site (issue 34): its weights are shared with the parent "
                          "(temperature folded in), so Predictor divides the logits by this before the softmax")
    parent_run_id: Optional[str] = Field(None, description="the run this version recalibrates (issue 34)")
    site: Optional[str] = Field(None, description="the site it was recalibrated for")
