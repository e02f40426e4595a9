"""What an `auto` run may try, in which order, and whether a try still fits in the time left (torch-free).

The search itself (tl_ui/engine/training/search.py) asks Optuna which candidate to try next; this module
lists the candidates (the strategies that apply to the data, each with a few settings), their Optuna
search space (the same names, so an enqueued candidate and a sampled one are the same thing), the
cheap-first order of the first tries, and the budget rule: a try starts only when it and the winner's
refit both fit in the time left, by the planning estimates (estimate.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tl_ui.core.config import STRATEGY_DEFAULTS, TEXT_ONLY_STRATEGIES, RunConfig

# A few settings per strategy: the Strategy step's defaults and their neighbours. Fine-tuning epochs are
# kept small (2-4): a search tries many things, each briefly; early stopping still keeps the best epoch.
SEARCH_SPACE: dict[str, dict[str, tuple]] = {
    "linear_probe": {},   # the head is fitted to convergence; its strength is chosen by cross-validation
    "partial": {"learning_rate": (5e-4, 1e-3, 2e-4), "epochs": (2, 4), "unfreeze_groups": (2, 1, 4)},
    "full": {"learning_rate": (1e-3, 3e-4), "epochs": (2, 4)},
    "lora": {"learning_rate": (3e-3, 1e-3), "epochs": (2, 4), "lora_rank": (8, 16)},
    "setfit": {"learning_rate": (2e-5,), "epochs": (1,)},
}
# Plain names for sentences and the trial table.
STRATEGY_NAMES = {"linear_probe": "the probe", "partial": "partial unfreezing", "full": "full fine-tuning",
                  "lora": "LoRA", "setfit": "SetFit"}
SETTING_NAMES = {"learning_rate": "rate", "epochs": "epochs", "unfreeze_groups": "groups", "lora_rank": "rank"}
SAMPLER = "TPESampler"
PRUNER = "MedianPruner"
MAX_TRIALS = 24


@dataclass(frozen=True)
class Candidate:
    """One thing to try: a strategy and its settings (those of SEARCH_SPACE; the rest are the run's)."""
    strategy: str
    settings: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        return self.strategy + "".join(f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}"
                                       for k, v in self.settings)

    @property
    def settings_dict(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def params(self) -> dict[str, Any]:
        """Its Optuna parameters (`params_for`'s names): what `study.enqueue_trial` takes."""
        return {"strategy": self.strategy, **{f"{self.strategy}.{k}": v for k, v in self.settings}}

    def describe(self) -> str:
        """'LoRA (rank 16, rate 0.001, 2 epochs)': the strategy's plain name and its settings."""
        name = STRATEGY_NAMES.get(self.strategy, self.strategy)
        parts = []
        for k, v in self.settings:
            parts.append(f"{v} epochs" if k == "epochs" else f"{SETTING_NAMES.get(k, k)} {v:g}"
                         if isinstance(v, float) else f"{SETTING_NAMES.get(k, k)} {v}")
        return f"{name} ({', '.join(parts)})" if parts else name

    def config(self, base: RunConfig) -> RunConfig:
        """The run's settings with this candidate's strategy and settings (a concrete, non-auto RunConfig)."""
        values = {**base.to_dict(), "strategy": self.strategy, "budget_minutes": None,
                  **STRATEGY_DEFAULTS[self.strategy], **self.settings_dict}
        return RunConfig.from_dict(values)


def strategies_for(modality: str) -> list[str]:
    """The strategies that apply to the data (SetFit only for texts)."""
    return [s for s in SEARCH_SPACE if modality == "text" or s not in TEXT_ONLY_STRATEGIES]


def candidates(modality: str) -> list[Candidate]:
    """Every candidate: each applicable strategy times its settings' grid."""
    out: list[Candidate] = []
    for strategy in strategies_for(modality):
        grid: list[tuple] = [()]
        for name, values in SEARCH_SPACE[strategy].items():
            grid = [g + ((name, v),) for g in grid for v in values]
        out.extend(Candidate(strategy, g) for g in grid)
    return out


def candidate_from_params(params: dict[str, Any]) -> Candidate:
    strategy = params["strategy"]
    return Candidate(strategy, tuple((name, params[f"{strategy}.{name}"]) for name in SEARCH_SPACE[strategy]))


def params_for(trial, modality: str) -> Candidate:
    """Ask an Optuna trial for a candidate (define-by-run: the settings depend on the strategy)."""
    strategy = trial.suggest_categorical("strategy", strategies_for(modality))
    for name, values in SEARCH_SPACE[strategy].items():
        trial.suggest_categorical(f"{strategy}.{name}", list(values))
    return candidate_from_params(trial.params)


def first_tries(modality: str, estimate) -> list[Candidate]:
    """The tries enqueued before the sampler takes over, cheapest first: the probe (seconds on cached
    embeddings), then each other strategy with its fewest epochs and the first of each setting's values.
    `estimate(candidate) -> seconds` orders them."""
    firsts = []
    for strategy in strategies_for(modality):
        settings = tuple((name, min(values) if name == "epochs" else values[0])
                         for name, values in SEARCH_SPACE[strategy].items())
        firsts.append(Candidate(strategy, settings))
    probe = [c for c in firsts if c.strategy == "linear_probe"]
    return probe + sorted((c for c in firsts if c.strategy != "linear_probe"), key=estimate)


def new_study(seed: int):
    """The search's Optuna study: TPE seeded with the run's seed; a median pruner that ends a fine-tuning try
    whose validation accuracy after an epoch is below the median of the earlier tries' at that epoch, once two
    tries have finished (a probe counts as finished but reports no epochs, so it never sets a median)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(seed)),
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))


def refit_share(strategy: str, val_fraction: float) -> float:
    """The winner's refit takes this share of its try's time: the probe's refit reads the training and
    validation embeddings back from the cache and computes only the test examples' (about `val_fraction` of
    them) and the head; any other strategy trains again from the start."""
    return min(1.0, float(val_fraction) + 0.1) if strategy == "linear_probe" else 1.0


def fits(estimate_s: float, left_s: float, reserve_done_s: float = 0.0, share: float = 1.0) -> bool:
    """A try starts only when it and a refit of the winner fit in the time left: the winner is this try
    (its refit: `share` of its time again) or one already done (its refit reserve: at most the largest of
    those, `reserve_done_s`)."""
    return estimate_s + max(share * estimate_s, reserve_done_s) <= left_s


def over_budget(elapsed_s: float, left_at_start_s: float, reserve_done_s: float = 0.0, share: float = 1.0) -> bool:
    """A running try is stopped once it and a refit of the winner no longer fit in what was left when it
    started (the same rule as `fits`, with the time it has taken so far)."""
    return elapsed_s + max(share * elapsed_s, reserve_done_s) > left_at_start_s
