"""One description of a run: `RunConfig` (a pydantic model; run.json is its JSON).

The UI form builds it, the CLI reads it from JSON (`train --config run.json`) and from flags
generated from its fields (tl_ui/cli/train.py: each field's description is its help text), and
every run folder carries it as `run.json`, so any run can be replayed from the command line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Strategy = Literal["linear_probe", "partial", "full", "lora", "setfit"]
STRATEGIES: tuple[str, ...] = ("linear_probe", "partial", "full", "lora", "setfit")
TEXT_ONLY_STRATEGIES = ("setfit",)
# "auto": a search over the strategies above and a few settings each, within a time budget
# (tl_ui/engine/training/search.py); the run's model is the winner's, refit.
AUTO = "auto"
STRATEGY_CHOICES: tuple[str, ...] = STRATEGIES + (AUTO,)
DEFAULT_BUDGET_MINUTES = 5.0
MIN_BUDGET_MINUTES = 0.25   # never valid below (the probe alone takes seconds); the upper limit is the server's

# Plain-words explanation of each strategy, shown in the UI and the CLI help.
STRATEGY_HELP: dict[str, str] = {
    "linear_probe": (
        "Linear probe: keep the pretrained model exactly as it is and train only a new last layer "
        "on top. Fastest (seconds), safest with very little data; cannot adapt the features themselves. "
        "The last layer is fitted to convergence in one go, so epochs and learning rate do not apply; "
        "image augmentation is off: each picture is read by the model once."
    ),
    "partial": (
        "Partial unfreezing: retrain the last few blocks of the model plus the new last layer. "
        "A good middle ground when you have a few hundred examples."
    ),
    "full": (
        "Full fine-tuning: retrain every layer, earlier layers more gently than later ones. "
        "Most flexible and slowest; needs more data to avoid memorising it."
    ),
    "lora": (
        "LoRA: add small trainable 'adapter' matrices inside the model and train only those plus the "
        "last layer. Close to full fine-tuning in quality at a fraction of the trainable weights."
    ),
    "setfit": (
        "SetFit (texts only): first teach the sentence encoder which of your texts belong together, "
        "from pairs of examples (same label: pull together, different labels: push apart), then train a "
        "new last layer on its sentences. Made for a few dozen to a few hundred texts; takes minutes."
    ),
    "auto": (
        "Let Transfer Lab choose: try the strategies that suit your data, each with a few settings, within "
        "a time limit; the cheapest first. Every try is scored on the validation examples only; the winner "
        "is trained again as your model and measured once on the test examples, which took no part in the choice."
    ),
}

# Defaults a user who changes nothing should get a good model with (see docs/benchmarks.md).
STRATEGY_DEFAULTS: dict[str, dict[str, Any]] = {
    "linear_probe": {"epochs": 30, "learning_rate": 3e-3},
    "partial": {"epochs": 5, "learning_rate": 5e-4},
    "full": {"epochs": 5, "learning_rate": 1e-3},
    "lora": {"epochs": 5, "learning_rate": 3e-3},
    # epochs: one pass over the bounded pairs (SetFit's default); the rate is the encoder's (SetFit's body rate)
    "setfit": {"epochs": 1, "learning_rate": 2e-5},
}

# What the probe's head and SetFit run, here (torch-free) so that the web process's time estimate and
# the Strategy step's words read the same numbers the engine runs with (tl_ui/engine/planning/estimate.py).
PROBE_MAX_ITER = 200            # the probe's final L-BFGS fit, at most; its iterations are the live curve's x axis
SETFIT_PAIRS_PER_EXAMPLE = 20   # SetFit's default num_iterations: 20 positive + 20 negative pairs per text
SETFIT_CHECKS = 8               # validation checks during the contrastive stage (early stopping)
# SetFit's contrastive pairs per run, at most (SetFit would draw 40 per training text): keeps a CPU
# run of MiniLM-L6 to minutes (RunConfig.extra "setfit_max_pairs" changes it for one run).
SETFIT_MAX_PAIRS = 480


# The strategy a user who picks none gets, by kind of data; for texts the benchmark's table
# (bench/sections/text_small_n.py, via tl_ui.core.measured) picks by the number of examples when it has run.
DEFAULT_STRATEGY_FOR: dict[str, str] = {"image": "linear_probe", "text": "lora"}
SET_LEVELS = (0.8, 0.9, 0.95)
DICOM_WINDOWS = ("header", "soft_tissue", "lung", "bone", "brain")   # tl_ui.data.dicom.WINDOW_PRESETS


def default_strategy(modality: Optional[str], n_examples: Optional[int] = None) -> str:
    if modality == "text":
        from tl_ui.core.measured_text import text_default

        measured = text_default(n_examples)
        if measured and measured["strategy"] in STRATEGIES:
            return measured["strategy"]
    return DEFAULT_STRATEGY_FOR.get(modality or "image", "linear_probe")


class ConfigError(ValueError):
    """A RunConfig value a user must fix; the message says which and how."""


def _option(default: Any = None, description: str = "", *, flag: Optional[str] = None,
            choices: Optional[tuple] = None, **kwargs) -> Any:
    """A RunConfig field: its default, its description (the CLI's help text and the JSON Schema's),
    the CLI flag when it is not `--<name-with-dashes>`, and the values it may take."""
    extra: dict[str, Any] = {}
    if flag:
        extra["flag"] = flag
    if choices:
        extra["enum"] = list(choices)
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return Field(description=description, json_schema_extra=extra or None, **kwargs)


class RunConfig(BaseModel):
    """run.json: every setting of one run. Empty numbers take the strategy's or the model's own value."""
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), coerce_numbers_to_str=True)

    model_id: str = _option("efficientnet_lite0", "shelf id or Hugging Face Hub id (see `models`)", flag="--model")
    data_path: str = _option("", "the data: a zip or folder of class folders, or a CSV/TSV/XLSX table (in run.json "
                                 "a relative path is read from run.json's folder)", flag="--data")
    strategy: str = _option("linear_probe", "what trains: the new last layer only (linear_probe), the top layer "
                            "groups (partial), everything (full), adapters (lora) or SetFit (texts); default: "
                            "linear_probe for images, for texts the benchmark's best for their number "
                            "(docs/benchmarks.md); auto: try them within --budget-minutes and keep the best "
                            "on the validation examples", choices=STRATEGY_CHOICES)
    budget_minutes: Optional[float] = _option(None, "auto: the search's time limit in minutes: its tries, the "
                                              "winner's refit and its report (default: 5)")
    epochs: Optional[int] = _option(None, "passes over the training examples (default: the strategy's; the "
                                    "linear probe's head is fitted to convergence instead)")
    learning_rate: Optional[float] = _option(None, "the new last layer's learning rate (default: the strategy's)")
    batch_size: int = _option(8, "examples per optimisation step")
    image_size: Optional[int] = _option(None, "images: side in pixels the model reads (default: the model's own)")
    max_length: int = _option(128, "texts: tokens read per example")
    val_fraction: float = _option(0.2, "share of the examples set aside for testing, and of the rest for "
                                       "validation (0.05 to 0.5)")
    seed: int = _option(0, "seed of the split, the subset and the training")
    random_init: bool = _option(False, "scratch baseline: random initial weights")
    unfreeze_groups: int = _option(2, "partial unfreezing: how many of the top layer groups train")
    head_only_epochs: int = _option(1, "full fine-tuning: epochs that train the new last layer alone first")
    lr_decay: float = _option(0.5, "full fine-tuning: each earlier layer group learns at this times the rate "
                                   "of the group above it")
    lora_rank: int = _option(8, "LoRA: rank of the adapter matrices")
    lora_alpha: int = _option(16, "LoRA: scale of the adapters (alpha)")
    lora_dropout: float = _option(0.05, "LoRA: dropout on the adapters' input")
    class_weighted: bool = _option(False, "weigh each class's loss by how rare it is")
    augment: bool = _option(True, "images, strategies other than the linear probe: a light random crop and "
                                  "colour jitter of the training images")
    early_stopping_patience: int = _option(3, "stop after this many epochs without a lower validation loss "
                                              "(0: never stop early)")
    weight_decay: float = _option(0.01, "AdamW weight decay")
    warmup_fraction: float = _option(0.1, "share of the steps over which the learning rate warms up")
    max_examples: Optional[int] = _option(None, "use at most this many examples (a stratified subset)")
    text_column: Optional[str] = _option(None, "table column holding the texts (default: detected)")
    label_column: Optional[str] = _option(None, "table column holding the labels (default: detected)")
    path_column: Optional[str] = _option(None, "table column holding image paths (default: detected)")
    group_column: Optional[str] = _option(None, "table column naming each example's group (site, scanner, ...): "
                                                "per-group metrics")
    label_columns: Optional[str] = _option(None, "multi-label: several 0/1 columns, one per label (a,b,c)")
    label_separator: Optional[str] = _option(None, "multi-label: ';' or '|' between labels in the label column "
                                                   "(default: detected; 'none': one label per row)")
    compare_scratch: bool = _option(False, "also train the same recipe from random weights (the CLI: into "
                                           "OUT-scratch) and report the difference pretraining makes")
    set_level: float = _option(0.9, "prediction sets hold the right class this often", choices=SET_LEVELS)
    positive_class: Optional[str] = _option(None, "one label per example: the condition to find (a class name); "
                                            "with it the run saves an operating point: a threshold chosen on the "
                                            "validation examples, its sensitivity and specificity measured on the "
                                            "test examples")
    operating_point: Optional[str] = _option(None, "how the threshold for the positive class is chosen on the "
                                             "validation examples: sensitivity:0.95 | specificity:0.9 | youden | "
                                             "threshold:0.3 (default with a positive class: youden)")
    prevalence: Optional[float] = _option(None, "the positive class's share where the model will be used (e.g. "
                                          "0.05): PPV and NPV are also given there, by Bayes' rule")
    evaluation: str = _option("three_way", "held-out roles (tl_ui/engine/evaluation/roles.py): three_way; same_set only "
                                           "for benchmarks", choices=("three_way", "same_set"))
    dicom_window: Optional[str] = _option(None, "DICOM display window (default: each file's own, 'header')",
                                          choices=DICOM_WINDOWS + (None,))
    num_threads: Optional[int] = _option(None, "torch CPU threads (default: the engine's)")
    data_sha256: Optional[str] = _option(None, "sha256 of the data this run trained on (a replay checks it)")
    limits: dict[str, Any] = _option(description="the data limits in force (a replay reads the data with them)",
                                     default_factory=dict)
    extra: dict[str, Any] = _option(description="run bookkeeping, e.g. continue_from, scratch_of, probe_head",
                                    default_factory=dict)

    # -- derived values -------------------------------------------------------------------
    @property
    def resolved_epochs(self) -> int:
        if self.epochs is not None:
            return int(self.epochs)
        return int(STRATEGY_DEFAULTS.get(self.strategy, {"epochs": 1})["epochs"])

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return float(STRATEGY_DEFAULTS.get(self.strategy, STRATEGY_DEFAULTS["linear_probe"])["learning_rate"])

    @property
    def budget_seconds(self) -> float:
        """auto: the search's hard time limit in seconds."""
        return 60.0 * float(self.budget_minutes if self.budget_minutes is not None else DEFAULT_BUDGET_MINUTES)

    def validate(self) -> "RunConfig":
        if self.strategy not in STRATEGY_CHOICES:
            raise ConfigError(
                f"Unknown strategy '{self.strategy}'. Choose one of: {', '.join(STRATEGY_CHOICES)}."
            )
        if self.budget_minutes is not None and float(self.budget_minutes) < MIN_BUDGET_MINUTES:
            raise ConfigError(f"The time budget must be at least {MIN_BUDGET_MINUTES:g} minutes "
                              f"(got {self.budget_minutes}).")
        # Upper limits are the server's (tl_ui/core/limits.py, from settings); here only what is never valid.
        if self.epochs is not None and int(self.epochs) < 1:
            raise ConfigError(f"Epochs must be at least 1 (got {self.epochs}).")
        if self.learning_rate is not None and not 0 < float(self.learning_rate) < 1:
            raise ConfigError(f"Learning rate must be between 0 and 1 (got {self.learning_rate}).")
        if int(self.batch_size) < 1:
            raise ConfigError(f"Batch size must be at least 1 (got {self.batch_size}).")
        if not 0.05 <= float(self.val_fraction) <= 0.5:
            raise ConfigError(
                f"Validation share must be between 0.05 and 0.5 (got {self.val_fraction})."
            )
        if self.image_size is not None and int(self.image_size) < 32:
            raise ConfigError(f"Image size must be at least 32 pixels (got {self.image_size}).")
        if int(self.max_length) < 8:
            raise ConfigError(f"Text length must be at least 8 tokens (got {self.max_length}).")
        if int(self.unfreeze_groups) < 1:
            raise ConfigError("Partial unfreezing needs at least 1 layer group to train.")
        if int(self.lora_rank) < 1:
            raise ConfigError("LoRA rank must be at least 1.")
        if self.dicom_window is not None and self.dicom_window not in DICOM_WINDOWS:
            raise ConfigError(f"Unknown DICOM window '{self.dicom_window}'. Choose one of: {', '.join(DICOM_WINDOWS)}.")
        if self.evaluation not in ("three_way", "same_set"):
            raise ConfigError(f"Unknown evaluation design '{self.evaluation}'.")
        if float(self.set_level) not in SET_LEVELS:
            raise ConfigError(f"The prediction-set level must be one of {', '.join(f'{x:g}' for x in SET_LEVELS)} "
                              f"(got {self.set_level}).")
        self._validate_operating_point()
        return self

    def _validate_operating_point(self) -> None:
        """The rule parses (`trust.operating_point.parse_rule`); a rule or a prevalence needs a positive class.
        Whether the class exists is the task's check (tl_ui/engine/tasks), once the data's classes are known."""
        from tl_ui.trust.operating_point import parse_rule

        if self.positive_class is not None and not str(self.positive_class).strip():
            self.positive_class = None
        if self.operating_point is not None:
            try:
                parse_rule(self.operating_point)
            except ValueError as exc:
                raise ConfigError(f"Operating point: {exc}.") from None
        if self.prevalence is not None and not 0 < float(self.prevalence) < 1:
            raise ConfigError(f"Prevalence is a share strictly between 0 and 1, e.g. 0.05 for 5% "
                              f"(got {self.prevalence}).")
        if self.positive_class is None and (self.operating_point is not None or self.prevalence is not None):
            raise ConfigError("An operating point (or a prevalence) needs the condition to find: name the positive "
                              "class too (--positive-class NAME, or 'positive_class' in the options).")

    def check_positive_class(self, classes, multilabel: bool = False) -> None:
        """The positive class must be one of the data's classes, and only one-label-per-example data has one
        (multi-label: each label has its own threshold). Asked by the service before a run is queued and by
        the run's task before it trains."""
        if self.positive_class is None:
            return
        if multilabel:
            raise ConfigError("A positive class and an operating point are for one label per example: in "
                              "multi-label data each label already gets its own threshold, chosen on the validation "
                              "examples (leave the positive class empty).")
        names = [str(c) for c in classes]
        if str(self.positive_class) not in names:
            raise ConfigError(f"The positive class {self.positive_class!r} is not one of this data's classes: "
                              f"{', '.join(names)}. Name one of them (the condition to find).")

    @property
    def operating_rule(self) -> tuple[Optional[str], Optional[float]]:
        """(rule, target) of the operating point; (None, None) without a positive class."""
        if self.positive_class is None:
            return None, None
        from tl_ui.trust.operating_point import DEFAULT_RULE, parse_rule

        return parse_rule(self.operating_point) if self.operating_point else (DEFAULT_RULE, None)

    # -- the one translator -------------------------------------------------------------------
    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, modality: Optional[str] = None,
                     n_examples: Optional[int] = None) -> "RunConfig":
        """The RunConfig for a mapping of settings, whoever sends it: the page's form, the API's
        options JSON, the CLI's flags. Empty values (None, "", and 0 where 0 means "automatic")
        take the one set of defaults; the strategy's epochs and learning rate are filled in, so
        run.json always holds the numbers the run used. Raises ConfigError naming the setting."""
        unknown = sorted(set(options) - set(cls.model_fields))
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(unknown)}. Known: {', '.join(sorted(OPTION_NAMES))}.")
        values: dict[str, Any] = {}
        for name, raw in options.items():
            if _is_empty(raw) or (name in ZERO_MEANS_AUTO and _is_zero(raw)):
                continue
            values[name] = raw.strip() if isinstance(raw, str) else raw
        values.setdefault("strategy", default_strategy(modality, n_examples))
        if values["strategy"] not in STRATEGY_CHOICES:
            raise ConfigError(f"Unknown strategy '{values['strategy']}'. Choose one of: "
                              f"{', '.join(STRATEGY_CHOICES)}.")
        if values["strategy"] == AUTO:   # each try's epochs and rate are the search's; the budget bounds them all
            values.setdefault("budget_minutes", DEFAULT_BUDGET_MINUTES)
            return cls._build(values).validate()
        if values["strategy"] in TEXT_ONLY_STRATEGIES and modality == "image":
            raise ConfigError("SetFit works on texts only. Pick another strategy for images (the linear probe "
                              "is the quickest).")
        defaults = STRATEGY_DEFAULTS[values["strategy"]]
        values.setdefault("epochs", defaults["epochs"])
        values.setdefault("learning_rate", defaults["learning_rate"])
        return cls._build(values).validate()

    @classmethod
    def _build(cls, values: Mapping[str, Any]) -> "RunConfig":
        """pydantic turns form, JSON and flag values into the fields' types; a value that does not
        fit is a ConfigError naming the setting."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else "?"
            label = name.replace("_", " ")
            raw = values.get(name, error.get("input"))
            raise ConfigError(f"The setting '{label}' has a value that does not fit: {raw!r}.") from None

    # -- JSON round trip --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise ConfigError(f"Unknown setting(s) in run config: {', '.join(unknown)}.")
        return cls._build(data).validate()

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"The run config is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise ConfigError("The run config must be a JSON object of settings.")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """A saved run.json; a relative data path is taken relative to the file's folder."""
        path = Path(path)
        config = cls.from_json(path.read_text(encoding="utf-8"))
        if config.data_path and not Path(config.data_path).is_absolute():
            config.data_path = str((path.parent / config.data_path).resolve())
        return config

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")


# Settings that are run bookkeeping, not options a person sets (the translator still accepts them
# from a saved run.json).
_INTERNAL = {"extra", "limits", "data_sha256", "data_path", "num_threads", "evaluation"}
OPTION_NAMES = frozenset(RunConfig.model_fields) - _INTERNAL
ZERO_MEANS_AUTO = frozenset({"epochs", "image_size", "max_examples", "learning_rate", "prevalence", "budget_minutes"})


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0
    except (TypeError, ValueError):
        return False
