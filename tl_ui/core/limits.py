"""What one run may ask for: the same limits for the page, the API and the CLI (from Settings).

Data limits (upload size, files, rows, classes, decoded pixels) live in `tl_ui.data.limits.Limits`
and are checked while reading; these are the run's settings and the model's size. Each refusal
names the limit and the setting that raises it. The defaults below are the only place of each
run limit's default: the server's settings (tl_ui/core/settings.py, `TL_MAX_EPOCHS` ...) start from them.
"""
from __future__ import annotations

from dataclasses import dataclass

from tl_ui.core.config import ConfigError, RunConfig


@dataclass(frozen=True)
class RunLimits:
    max_epochs: int = 200
    max_batch_size: int = 128
    max_image_size: int = 512
    max_lora_rank: int = 64
    max_text_length: int = 512
    max_model_params_m: float = 400.0
    max_budget_minutes: float = 60.0

    def check(self, config: RunConfig) -> RunConfig:
        checks = [
            ("epochs", config.epochs, self.max_epochs, "TL_MAX_EPOCHS"),
            ("batch size", config.batch_size, self.max_batch_size, "TL_MAX_BATCH_SIZE"),
            ("image size", config.image_size, self.max_image_size, "TL_MAX_IMAGE_SIZE"),
            ("LoRA rank", config.lora_rank, self.max_lora_rank, "TL_MAX_LORA_RANK"),
            ("text length", config.max_length, self.max_text_length, "TL_MAX_TEXT_LENGTH"),
            ("time budget (minutes)", config.budget_minutes, self.max_budget_minutes, "TL_MAX_BUDGET_MINUTES"),
        ]
        for name, value, limit, setting in checks:
            if value is not None and value > limit:
                raise ConfigError(f"The {name} {value:g} is over this Transfer Lab's limit of {limit:g}. Choose "
                                  f"{limit:g} or less (the person who runs it can raise the limit: setting {setting}).")
        config.limits = {**config.limits, "max_model_params_m": self.max_model_params_m}
        return config


def model_too_large_message(display_name: str, params_m: float, limit_m: float) -> str:
    return (f"The model '{display_name}' has {params_m:,.0f} million weights, more than this Transfer Lab "
            f"allows ({limit_m:,.0f} million; setting TL_MAX_MODEL_PARAMS). Pick a smaller model.")
