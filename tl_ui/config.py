"""One description of a run: `RunConfig`.

The UI form builds it, the CLI reads it from JSON (`train --config run.json`), and every run
folder carries it as `run.json`, so any run can be replayed from the command line.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

Strategy = Literal["linear_probe", "partial", "full", "lora", "setfit"]
STRATEGIES: tuple[str, ...] = ("linear_probe", "partial", "full", "lora", "setfit")
TEXT_ONLY_STRATEGIES = ("setfit",)

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


# The strategy a user who picks none gets, by kind of data; for texts the benchmark's table
# (bench/sections/text_small_n.py, via tl_ui.measured) picks by the number of examples when it has run.
DEFAULT_STRATEGY_FOR: dict[str, str] = {"image": "linear_probe", "text": "lora"}
SET_LEVELS = (0.8, 0.9, 0.95)
DICOM_WINDOWS = ("header", "soft_tissue", "lung", "bone", "brain")   # tl_ui.data.dicom.WINDOW_PRESETS


def default_strategy(modality: Optional[str], n_examples: Optional[int] = None) -> str:
    if modality == "text":
        from tl_ui.measured_text import text_default

        measured = text_default(n_examples)
        if measured and measured["strategy"] in STRATEGIES:
            return measured["strategy"]
    return DEFAULT_STRATEGY_FOR.get(modality or "image", "linear_probe")


class ConfigError(ValueError):
    """A RunConfig value a user must fix; the message says which and how."""


@dataclass
class RunConfig:
    model_id: str = "efficientnet_lite0"
    data_path: str = ""
    strategy: str = "linear_probe"
    epochs: Optional[int] = None            # None: the strategy's default
    learning_rate: Optional[float] = None   # None: the strategy's default (the head's rate)
    batch_size: int = 8
    image_size: Optional[int] = None        # None: the model's own input size
    max_length: int = 128                   # text: tokens per example
    val_fraction: float = 0.2
    seed: int = 0
    random_init: bool = False               # scratch baseline: same recipe, random weights
    unfreeze_groups: int = 2                # partial: how many top layer groups train
    head_only_epochs: int = 1               # full: epochs training the head alone first
    lr_decay: float = 0.5                   # full: each earlier group gets this times the rate
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    class_weighted: bool = False
    augment: bool = True                    # images, non-probe strategies only
    early_stopping_patience: int = 3        # epochs without val-loss improvement; 0 disables
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_examples: Optional[int] = None      # use at most this many examples (stratified subset)
    text_column: Optional[str] = None
    label_column: Optional[str] = None
    path_column: Optional[str] = None
    group_column: Optional[str] = None      # site / scanner / source: per-group metrics in Results
    label_columns: Optional[str] = None     # multi-label: several 0/1 columns, one per label ("a,b,c")
    label_separator: Optional[str] = None   # multi-label: ";" or "|" in the label column; None: detected
    compare_scratch: bool = False           # also queue the same recipe from random weights
    set_level: float = 0.9                  # prediction sets: the right class is in the set this often
    evaluation: str = "three_way"           # held-out roles (engine/roles.py); "same_set" only for benchmarks
    dicom_window: Optional[str] = None      # DICOM display window preset; None: each file's own window
    num_threads: Optional[int] = None       # torch CPU threads; None: engine default
    data_sha256: Optional[str] = None       # the data this run trained on (a replay checks it)
    limits: dict[str, Any] = field(default_factory=dict)   # data limits in force (a replay uses them)
    extra: dict[str, Any] = field(default_factory=dict)

    # -- derived values -------------------------------------------------------------------
    @property
    def resolved_epochs(self) -> int:
        return int(self.epochs if self.epochs is not None else STRATEGY_DEFAULTS[self.strategy]["epochs"])

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return float(STRATEGY_DEFAULTS[self.strategy]["learning_rate"])

    def validate(self) -> "RunConfig":
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"Unknown strategy '{self.strategy}'. Choose one of: {', '.join(STRATEGIES)}."
            )
        # Upper limits are the server's (tl_ui/limits.py, from settings); here only what is never valid.
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
        return self

    # -- the one translator -------------------------------------------------------------------
    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, modality: Optional[str] = None,
                     n_examples: Optional[int] = None) -> "RunConfig":
        """The RunConfig for a mapping of settings, whoever sends it: the page's form, the API's
        options JSON, the CLI's flags. Empty values (None, "", and 0 where 0 means "automatic")
        take the one set of defaults; the strategy's epochs and learning rate are filled in, so
        run.json always holds the numbers the run used. Raises ConfigError naming the setting."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(unknown)}. Known: {', '.join(sorted(OPTION_NAMES))}.")
        values: dict[str, Any] = {}
        for name, raw in options.items():
            if _is_empty(raw) or (name in ZERO_MEANS_AUTO and _is_zero(raw)):
                continue
            values[name] = _coerce(name, known[name].type, raw)
        values.setdefault("strategy", default_strategy(modality, n_examples))
        if values["strategy"] not in STRATEGIES:
            raise ConfigError(f"Unknown strategy '{values['strategy']}'. Choose one of: {', '.join(STRATEGIES)}.")
        if values["strategy"] in TEXT_ONLY_STRATEGIES and modality == "image":
            raise ConfigError("SetFit works on texts only. Pick another strategy for images (the linear probe "
                              "is the quickest).")
        defaults = STRATEGY_DEFAULTS[values["strategy"]]
        values.setdefault("epochs", defaults["epochs"])
        values.setdefault("learning_rate", defaults["learning_rate"])
        return cls(**values).validate()

    # -- JSON round trip --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown setting(s) in run config: {', '.join(unknown)}.")
        return cls(**data).validate()

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
OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(RunConfig)) - _INTERNAL
ZERO_MEANS_AUTO = frozenset({"epochs", "image_size", "max_examples", "learning_rate"})


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0
    except (TypeError, ValueError):
        return False


def _coerce(name: str, type_text: Any, raw: Any) -> Any:
    """Turn a form / JSON / flag value into the field's type, with a message naming the setting."""
    kind = str(type_text)
    label = name.replace("_", " ")
    try:
        if kind.startswith("bool"):
            if isinstance(raw, str):
                if raw.strip().lower() in ("1", "true", "yes", "on"):
                    return True
                if raw.strip().lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(raw)
            return bool(raw)
        if "int" in kind and "float" not in kind:
            number = float(raw)
            if number != int(number):
                raise ValueError(raw)
            return int(number)
        if "float" in kind:
            return float(raw)
        if "dict" in kind:
            if not isinstance(raw, dict):
                raise ValueError(raw)
            return dict(raw)
        return str(raw).strip()
    except (TypeError, ValueError):
        raise ConfigError(f"The setting '{label}' has a value that does not fit: {raw!r}.") from None
