"""`RunMetrics`: metrics.json, what the Results step, the runs table, the CLI and users' scripts read.

The engine's builders make the dict through the run's task (tl_ui/engine/tasks: single-label ones in
tl_ui/engine/evaluation/report.py and evaluate.py, the multi-label one in tasks/multi_label.py); the
run folder writes it only through this model (`RunFolder.write_metrics`) and reads it back through it
(`RunFolder.read_metrics`). The stable fields are typed precisely; every block also keeps keys it
does not know (`extra="allow"`), so a field added by a newer engine travels through older readers
and an older metrics.json (fewer blocks) still loads. Every number is measured on the test
("report") examples unless its name says otherwise; intervals are `[low, high]` at `ci_level`.
"""
from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field

from tl_ui.contracts.base import Block

Interval = Annotated[list[float], Field(min_length=2, max_length=2, description="[low, high]")]


class ClassScores(Block):
    """One class (multi-label: one label) on the test examples."""
    precision: float
    recall: float
    f1: float
    support: int = Field(description="test examples of this class")
    precision_ci: Optional[Interval] = None
    recall_ci: Optional[Interval] = None


class Mistake(Block):
    """A wrong answer the model was surest of (most confident first)."""
    item: str = Field(description="the example: a file path or the text")
    true: str = Field(description="its label (multi-label: labels joined by '; ')")
    predicted: str
    confidence: float = Field(description="the predicted class's probability (multi-label: the largest |score - truth|)")
    file: Optional[str] = Field(None, description="a metadata-free PNG preview, relative to the run folder")


class Evaluation(Block):
    """Who chose and who reported: the held-out roles (tl_ui/engine/evaluation/roles.py)."""
    design: str = Field(description="'three_way' (train / validation / test), 'same_set' (benchmarks only), or 'site_halves' (a version recalibrated for a new site: chosen on one half of its data, reported on the other)")
    reported_on: str
    n_reported: int
    chosen_on: str
    n_chosen: int
    chosen: list[str] = Field(description="what the validation examples chose")
    sentence: str


class ReliabilityBin(Block):
    low: float
    high: float
    confidence: float
    accuracy: float
    count: int


class Calibration(Block):
    """Temperature scaling, fitted on the validation examples, judged on the test examples. Runs recorded
    before issue 32 have only the temperature, the ECEs and the bins."""
    temperature: float
    ece_before: float
    ece_after: float
    bins: list[ReliabilityBin]
    bins_before: list[ReliabilityBin]
    n_bins: Optional[int] = None
    fit: Optional[str] = Field(None, description="'fitted', 'limited' (sharpening stopped at the cap) or 'kept at 1'")
    temperature_note: Optional[str] = Field(None, description="which of those happened and why, in one sentence")
    nll_optimum: Optional[float] = Field(None, description="the plain, unbounded fit's temperature (null without "
                                                           "validation examples)")
    confidence_cap: Optional[float] = Field(None, description="(right + 1) / (n + 2) on the validation examples: the "
                                                              "mean confidence a sharpening fit may reach")
    ece_before_ci: Optional[Interval] = Field(None, description="the ECEs the test examples cannot rule out, before")
    ece_after_ci: Optional[Interval] = Field(None, description="...and after calibration")
    ece_ci_method: Optional[str] = None
    ece_sentence: Optional[str] = Field(None, description="what the test examples cannot rule out, in words")


class Conformal(Block):
    """Prediction sets (split conformal) at `level`; coverage null with a `note` when too few validation examples."""
    level: float
    n_calibration: int
    method: Optional[str] = None
    coverage: Optional[float] = None
    mean_set_size: Optional[float] = None
    threshold: Optional[float] = None
    coverage_ci: Optional[Interval] = None
    note: Optional[str] = None


class CrossValidation(Block):
    """Repeated stratified k-fold of the linear probe's fixed recipe (shown first below 100 test examples)."""
    folds: int
    repeats: int
    accuracy: float
    accuracy_ci: Interval
    macro_f1: float
    macro_f1_ci: Interval
    method: str
    n: Optional[int] = Field(None, description="the examples the folds tested")
    scope: Optional[str] = Field(None, description="what each fold refits: 'whole_recipe' (the only scope written)")
    floored_intervals: Optional[list[str]] = Field(None, description="names of this block's intervals widened to what their n allows (tl_ui/trust/floors.py); [] when none")


class GroupRecall(Block):
    value: Optional[float] = Field(description="null when the group has no example of the class")
    ci: Interval
    n: int


class GroupScores(Block):
    n: int
    accuracy: float
    accuracy_ci: Interval
    macro_f1: float
    recall: dict[str, GroupRecall]
    few_examples: bool


class GroupGap(Block):
    accuracy: float
    between: list[str]


class Groups(Block):
    """Per-group numbers (site, scanner, ...) for the run's group column."""
    column: Optional[str] = None
    by_group: dict[str, GroupScores]
    max_gap: GroupGap
    warnings: list[str]


class InnerCV(Block):
    folds: int
    grid: list[float]
    loss: list[float]
    chosen: float


class ProbeFit(Block):
    """The linear probe's full-batch head (tl_ui/engine/probe/solver.py; multi-label: one-vs-rest)."""
    method: str
    iterations: int
    fit_seconds: float
    l2: Optional[float] = None
    inner_cv: Optional[InnerCV] = None
    C: Optional[list[float]] = Field(None, description="multi-label: the regularisation chosen per label")


class PretrainingGain(Block):
    """Pretrained minus from-scratch accuracy on the same test examples (paired bootstrap)."""
    accuracy: float
    ci: Interval
    n: int
    floored: Optional[bool] = Field(None, description="the interval was widened to what the discordant counts allow")


class Familiarity(Block):
    """How often ordinary test examples are flagged "unlike the training data" (or `error`)."""
    method: Optional[str] = None
    k: Optional[int] = None
    threshold: Optional[float] = None
    n_reference: Optional[int] = None
    n_threshold: Optional[int] = None
    percentile: Optional[float] = None
    n_test: Optional[int] = None
    test_flag_rate: Optional[float] = None
    test_flag_rate_ci: Optional[Interval] = None
    sentence: Optional[str] = None
    error: Optional[str] = None


class LabelScores(Block):
    """One label of a multi-label run at its chosen threshold."""
    precision: float
    precision_ci: Interval
    recall: float
    recall_ci: Interval
    f1: float
    support: int
    tp: int
    fp: int
    fn: int
    tn: int
    average_precision: Optional[float] = None
    threshold: float
    threshold_choice: Optional[str] = None
    sentence: str


class MultiLabelScores(Block):
    """metrics.json's `multilabel` block (tl_ui/trust/multilabel.py)."""
    n: int
    labels: list[str]
    thresholds: dict[str, float]
    micro_f1: float
    micro_f1_ci: Interval
    macro_f1: float
    macro_f1_ci: Interval
    subset_accuracy: float
    subset_accuracy_ci: Interval
    hamming_loss: float
    hamming_loss_ci: Interval
    mean_average_precision: Optional[float] = None
    mean_average_precision_ci: Optional[Interval] = None
    per_label: dict[str, LabelScores]
    ci_level: float
    ci_method: str
    sentences: dict[str, str]
    floored_intervals: Optional[list[str]] = Field(None, description="names of this block's intervals widened to what their n allows (tl_ui/trust/floors.py); [] when none")


class RocCurve(Block):
    """ROC points, thresholds falling (a point flags score >= its threshold; null: above every score)."""
    fpr: list[float]
    tpr: list[float]
    thresholds: list[Optional[float]]


class PrCurve(Block):
    """Precision-recall points (scikit-learn's order: thresholds rising)."""
    precision: list[float]
    recall: list[float]
    thresholds: list[Optional[float]]


class ClassRoc(Block):
    """One class against the rest on the test examples (tl_ui/trust/roc.py `binary_roc`); areas null with a
    `note` when the test examples lack the class or the rest."""
    n_positive: Optional[int] = None
    n_negative: Optional[int] = None
    auroc: Optional[float] = None
    auroc_ci: Optional[Interval] = None
    auprc: Optional[float] = Field(None, description="average precision")
    auprc_ci: Optional[Interval] = None
    method: Optional[str] = Field(None, description="how each interval and band was computed")
    curve: Optional[RocCurve] = Field(None, description="at most 200 points; the operating point is one of them")
    pr_curve: Optional[PrCurve] = None
    roc_band: Optional[dict[str, list[float]]] = Field(None, description="pointwise band: fpr, tpr, tpr_low, tpr_high")
    pr_band: Optional[dict[str, list[float]]] = Field(None, description="pointwise band: recall, precision, precision_low, precision_high")
    note: Optional[str] = None


class Roc(ClassRoc):
    """metrics.json's `roc` (issue 33): the positive class against the rest (its fields null until one is
    named), and `one_vs_rest` for every class when K > 2 or when no positive class is named."""
    positive_class: Optional[str] = None
    one_vs_rest: Optional[dict[str, ClassRoc]] = None


class AtPrevalence(Block):
    """PPV and NPV where the condition has the prevalence the user typed (Bayes' rule)."""
    prevalence: float
    ppv: Optional[float] = None
    ppv_ci: Interval
    npv: Optional[float] = None
    npv_ci: Interval
    method: str


class OperatingPoint(Block):
    """metrics.json's `operating_point` (tl_ui/trust/operating_point.py): the threshold chosen on the
    validation examples by `rule`, every number at it measured on the test examples (Wilson intervals).
    A share that cannot be measured (e.g. PPV when nothing is flagged) is null with the interval [0, 1]."""
    positive_class: str
    rule: str = Field(description="'sensitivity', 'specificity', 'youden' or 'threshold' (fixed)")
    target: Optional[float] = None
    threshold: float = Field(description="an input is called positive when its probability of positive_class is >= this")
    chosen_on: str = Field(description="'validation', or 'fixed' for a threshold given by hand")
    n_chosen: int
    reported_on: str
    n_reported: Optional[int] = None
    sensitivity: Optional[float] = None
    sensitivity_ci: Interval
    specificity: Optional[float] = None
    specificity_ci: Interval
    ppv: Optional[float] = None
    ppv_ci: Interval
    npv: Optional[float] = None
    npv_ci: Interval
    tp: int
    fp: int
    fn: int
    tn: int
    prevalence: Optional[float] = Field(None, description="the test examples' share of the positive class")
    at_prevalence: Optional[AtPrevalence] = None
    sensitivity_on_choose: Optional[float] = None
    specificity_on_choose: Optional[float] = None
    fallback: Optional[str] = Field(None, description="how the threshold was set when the validation examples were too few for the rule")
    note: Optional[str] = Field(None, description="why, in one sentence (only then)")
    sentence: Optional[str] = None
    level: Optional[float] = None


class DecisionCurve(Block):
    """metrics.json's `decision_curve` (Vickers & Elkin 2006) on the test examples."""
    thresholds: list[float]
    net_benefit: list[float]
    treat_all: list[float]
    net_benefit_low: Optional[list[float]] = None
    net_benefit_high: Optional[list[float]] = None
    treat_none: Optional[float] = None
    prevalence: Optional[float] = None
    n: Optional[int] = None
    method: Optional[str] = None
    positive_class: Optional[str] = None
    sentence: Optional[str] = None


class LabelOperatingPoint(Block):
    """Multi-label: one label's curves and the numbers at the threshold it already has."""
    roc: ClassRoc
    operating_point: dict


class SearchTrialRecord(Block):
    """One try of an `auto` search: scored on the validation (choose) examples only."""
    strategy: str
    settings: dict = Field(description="the settings it tried (learning_rate, epochs, lora_rank, unfreeze_groups)")
    val_score: Optional[float] = Field(None, description="validation accuracy (a pruned try: its last epoch's)")
    val_score_ci: Optional[Interval] = Field(None, description="Wilson interval of val_score (finished tries)")
    seconds: float
    state: str = Field(description="'complete', 'pruned', 'stopped' (over the budget), 'skipped' (would not fit), 'failed'")
    name: Optional[str] = Field(None, description="the try in words")
    note: Optional[str] = None


class SearchWinner(Block):
    strategy: str
    settings: dict


class Search(Block):
    """metrics.json's `search` (strategy `auto`, tl_ui/engine/search/run.py): the tries, chosen on the
    validation examples; the winner was trained again as the run's model and every other number of
    metrics.json is that model's, measured once on the test examples."""
    budget_s: float
    sampler: str
    seed: int
    trials: list[SearchTrialRecord]
    winner: SearchWinner
    margin: Optional[float] = Field(description="winner minus runner-up validation accuracy, same examples "
                                                "(null with one finished try)")
    margin_ci: Optional[Interval] = Field(description="paired bootstrap interval of the margin")
    sentence: str
    pruner: Optional[str] = None
    n_chosen: Optional[int] = Field(None, description="the validation examples every try was scored on")
    seconds: Optional[float] = Field(None, description="the search's tries, in all")
    winner_kept: Optional[str] = Field(None, description="'refit': the winner trained again as the run's model")
    replay: bool = Field(False, description="a replay of a recorded search (run.json's extra.search.trials): the "
                                            "recorded tries in their order, finished ones trained again, the others "
                                            "kept as recorded; no clock")


class RecalibrationSide(Block):
    """The held-back half of the new site's data, with the parent's (before) or the refitted (after) calibration."""
    ece: float
    ece_ci: Interval
    accuracy: float
    accuracy_ci: Interval
    coverage: Optional[float] = Field(None, description="prediction sets' coverage at `set_level` (null: no thresholds)")
    coverage_ci: Optional[Interval] = None
    mean_set_size: Optional[float] = None
    threshold: Optional[float] = Field(None, description="the operating point's threshold (only with one)")
    sensitivity: Optional[float] = None
    sensitivity_ci: Optional[Interval] = None
    specificity: Optional[float] = None
    specificity_ci: Optional[Interval] = None


class Recalibration(Block):
    """A version recalibrated for a new site (issue 34): refitted on one random stratified half of the site's
    labelled data, every number of metrics.json measured on the other half."""
    parent_run_id: str
    site: str
    data_sha256: Optional[str] = None
    seed: int
    split: str
    n_fit: int
    n_report: int
    n_excluded: Optional[int] = Field(None, description="site examples left out: labels the model does not know")
    temperature: float = Field(description="the refitted temperature, on top of the parent's (folded into the shared weights)")
    site_temperature: Optional[float] = Field(None, description="everything applied on top of the shared weights (a "
                                                                 "version of a version multiplies)")
    temperature_fit: Optional[str] = None
    temperature_note: Optional[str] = None
    set_level: float
    thresholds: dict[str, Optional[float]]
    before: RecalibrationSide
    after: RecalibrationSide
    ci_level: float
    sentence: str


class RunMetrics(Block):
    """metrics.json. Multi-label runs (`task: "multi_label"`): `accuracy` is subset accuracy, `per_class`
    the per-label scores, and there is no calibration, conformal, confusion matrix or cross-validation."""
    accuracy: float
    macro_f1: float
    n_val: int = Field(description="test examples (every number is measured on them)")
    classes: list[str]
    per_class: dict[str, ClassScores]
    mistakes: list[Mistake]
    task: Optional[str] = Field(None, description="'multi_label', or absent (one label per example)")
    majority_baseline_accuracy: Optional[float] = Field(None, description="what always guessing the largest class scores")
    confusion_matrix: Optional[list[list[int]]] = Field(None, description="rows: true class, columns: predicted, in `classes` order")
    accuracy_ci: Optional[Interval] = None
    macro_f1_ci: Optional[Interval] = None
    ci_level: Optional[float] = None
    ci_method: Optional[str] = None
    accuracy_sentence: Optional[str] = None
    floored_intervals: Optional[list[str]] = Field(None, description="names of this block's intervals widened to what their n allows (tl_ui/trust/floors.py); [] when none")
    macro_f1_sentence: Optional[str] = Field(None, description="why macro_f1_ci was widened (only when it was)")
    micro_f1: Optional[float] = None
    micro_f1_ci: Optional[Interval] = None
    n_train: Optional[int] = None
    best_epoch: Optional[int] = Field(None, description="the epoch kept (the probe's head: L-BFGS iterations)")
    epochs_run: Optional[int] = None
    strategy: Optional[str] = None
    model_id: Optional[str] = None
    random_init: Optional[bool] = None
    trainable_params: Optional[int] = None
    total_params: Optional[int] = None
    train_seconds: Optional[float] = None
    evaluation: Optional[Evaluation] = None
    calibration: Optional[Calibration] = None
    conformal: Optional[Conformal] = None
    cross_validation: Optional[CrossValidation] = None
    groups: Optional[Groups] = None
    probe_fit: Optional[ProbeFit] = None
    familiarity: Optional[Familiarity] = None
    scratch_run: Optional[str] = Field(None, description="the from-scratch companion's run id")
    pretraining_gain: Optional[PretrainingGain] = None
    scratch_accuracy: Optional[float] = None
    scratch_accuracy_ci: Optional[Interval] = None
    multilabel: Optional[MultiLabelScores] = None
    pos_weight: Optional[dict[str, float]] = Field(None, description="multi-label: BCE positive weight per label")
    roc: Optional[Roc] = None
    operating_point: Optional[OperatingPoint] = Field(None, description="only when the run names a positive class")
    decision_curve: Optional[DecisionCurve] = Field(None, description="only when the run names a positive class")
    search: Optional[Search] = Field(None, description="only for strategy 'auto': the tries and the winner")
    recalibration: Optional[Recalibration] = Field(None, description="a version recalibrated for a new site (issue 34)")
    label_operating_points: Optional[dict[str, LabelOperatingPoint]] = Field(
        None, description="multi-label: per label, its ROC / PR curves and the numbers at its threshold")
