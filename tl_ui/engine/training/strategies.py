"""Freezing strategies: which parameters train, at which learning rate.

* linear_probe – only the head; the backbone's outputs are cached once (see features.py).
* partial      – the top `unfreeze_groups` layer groups + the head; BatchNorm statistics of the
                 frozen part stay frozen.
* full         – everything, earlier groups at geometrically smaller learning rates (fastai's
                 discriminative rates), optionally after some epochs training the head alone;
                 BatchNorm statistics stay as pretrained.
* lora         – peft LoRA adapters on the entry's target modules; the head is fully trainable
                 through `modules_to_save`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from tl_ui.core.config import RunConfig
from tl_ui.engine.models.build import LoadedModel, count_parameters


@dataclass
class TrainPlan:
    model: nn.Module                      # the model to train (a PeftModel for LoRA)
    param_groups: list[dict]              # for the optimizer: {"params": [...], "lr": float, "name": str}
    frozen_norm_modules: list[nn.Module] = field(default_factory=list)  # kept in eval mode while training
    trainable_params: int = 0
    total_params: int = 0

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / max(self.total_params, 1)

    def activate(self, model: nn.Module) -> None:
        """Only this plan's parameters get gradients (the head-only stage freezes the backbone)."""
        active = {id(p) for group in self.param_groups for p in group["params"]}
        for p in model.parameters():
            p.requires_grad_(id(p) in active)

    def set_train_mode(self) -> None:
        """model.train(), but frozen BatchNorm layers keep their running statistics."""
        self.model.train()
        for module in self.frozen_norm_modules:
            module.eval()


def plan(loaded: LoadedModel, config: RunConfig, *, head_only: bool = False) -> TrainPlan:
    """Set requires_grad for `config.strategy` and return the optimizer's parameter groups.

    `head_only=True` plans the first phase of probe-then-fine-tune: only the head trains.
    """
    strategy = "linear_probe" if head_only else config.strategy
    lr = config.resolved_learning_rate
    if strategy == "lora":
        return _plan_lora(loaded, config, lr)

    model = loaded.model
    groups = loaded.layer_groups
    if strategy == "linear_probe":
        trainable_groups: list[int] = []
    elif strategy == "partial":
        trainable_groups = list(range(max(0, len(groups) - int(config.unfreeze_groups)), len(groups)))
    else:  # full
        trainable_groups = list(range(len(groups)))

    head_names = loaded.head_parameter_names()
    trainable_names = set(head_names)
    for g in trainable_groups:
        trainable_names.update(groups[g])
    params = dict(model.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in trainable_names)

    param_groups = [{"params": [params[n] for n in sorted(head_names)], "lr": lr, "name": "head"}]
    for depth, g in enumerate(reversed(trainable_groups)):
        # The group just below the head trains at lr * decay, the one below at lr * decay**2, ...
        # (full only; partial keeps one rate because the unfrozen groups are all near the top).
        group_lr = lr * (config.lr_decay ** (depth + 1)) if strategy == "full" else lr
        param_groups.append({"params": [params[n] for n in groups[g]], "lr": group_lr, "name": f"group{g}"})

    if strategy == "full":
        # Full fine-tuning keeps every BatchNorm's pretrained statistics (its weights still train):
        # batch statistics of a few small batches wreck them (held-out accuracy on 50 digits: 0.19
        # with updating statistics, 0.70 with them kept; docs/benchmarks.md).
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    else:
        norms = _norm_modules_under(model, _frozen_module_prefixes(model, trainable_names))
    trainable, total = count_parameters(model)
    return TrainPlan(model, param_groups, norms, trainable, total)


def _frozen_module_prefixes(model: nn.Module, trainable_names: set[str]) -> list[str]:
    """Names of modules none of whose own parameters train."""
    frozen = []
    for name, module in model.named_modules():
        own = [f"{name}.{p}" if name else p for p, _ in module.named_parameters(recurse=False)]
        if own and not any(n in trainable_names for n in own):
            frozen.append(name)
    return frozen


def _norm_modules_under(model: nn.Module, names: list[str]) -> list[nn.Module]:
    modules = dict(model.named_modules())
    return [modules[n] for n in names if isinstance(modules[n], nn.modules.batchnorm._BatchNorm)]


def _plan_lora(loaded: LoadedModel, config: RunConfig, lr: float) -> TrainPlan:
    from peft import LoraConfig, get_peft_model

    targets = loaded.entry.lora_targets
    lora = LoraConfig(
        r=int(config.lora_rank), lora_alpha=int(config.lora_alpha), lora_dropout=float(config.lora_dropout),
        target_modules=targets if isinstance(targets, str) else list(targets),
        modules_to_save=list(loaded.head_names) + list(loaded.lora_fully_trained),
    )
    model = get_peft_model(loaded.model, lora)
    # Every BatchNorm in a LoRA'd conv net is frozen (its weights do not train): keep its statistics.
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable, n_total = count_parameters(model)
    return TrainPlan(model, [{"params": trainable, "lr": lr, "name": "lora+head"}], norms, n_trainable, n_total)


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def snapshot(module: nn.Module) -> dict:
    """A copy of the module's weights (the best epoch's, restored at the end)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
