"""Text probes on what a sentence encoder was trained to produce (issue 13).

all-MiniLM-L6-v2 was trained for *mean pooling* of its token states, then L2 normalisation (its
`modules.json` and `1_Pooling/config.json` say so). BERT's `[CLS]` pooler, which
`AutoModelForSequenceClassification` feeds its classifier, was never trained for it: five-fold
logistic regression on the sample reviews scored 0.61 on pooler features, 0.70 on mean-pooled
ones. `SentenceClassifier` is the encoder, the pooling its own sentence-transformers config names
(mean with the attention mask when there is no such config), that config's normalisation, and a
linear `classifier`: the probe caches the classifier's inputs, and prediction applies the same
pooling because it is the same module. Exports are a sentence-transformers folder plus the head
in safetensors (see sentence_export.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import torch
from torch import nn

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


def sentence_config(folder: Optional[str | Path]) -> dict:
    """{"pooling", "normalize", "source"} from a sentence-transformers folder's own config; mean
    pooling without normalisation when the folder has none (a plain transformers encoder)."""
    folder = Path(folder) if folder else None
    modules_file = folder / "modules.json" if folder else None
    if not modules_file or not modules_file.is_file():
        return {"pooling": "mean", "normalize": False, "source": "default (no sentence-transformers config)"}
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    pooling, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith(".Pooling"):
            config_file = folder / module.get("path", "") / "config.json"
            if config_file.is_file():
                pooling = _pooling_mode(json.loads(config_file.read_text(encoding="utf-8")))
        elif kind.endswith(".Normalize"):
            normalize = True
    return {"pooling": pooling, "normalize": normalize, "source": "the encoder's sentence-transformers config"}


def _pooling_mode(config: dict) -> str:
    if config.get("pooling_mode"):
        mode = str(config["pooling_mode"]).replace("mean_tokens", "mean").replace("cls_token", "cls")
        return mode if mode in POOLING_MODES else "mean"
    for mode, key in (("cls", "pooling_mode_cls_token"), ("max", "pooling_mode_max_tokens"),
                      ("mean_sqrt_len", "pooling_mode_mean_sqrt_len_tokens"), ("mean", "pooling_mode_mean_tokens")):
        if config.get(key):
            return mode
    return "mean"


def pool(states: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """One vector per text from token states (batch, tokens, width) and the attention mask."""
    if mode == "cls":
        return states[:, 0]
    weights = mask.unsqueeze(-1).to(states.dtype)
    if mode == "max":
        return states.masked_fill(weights == 0, torch.finfo(states.dtype).min).max(dim=1).values
    total = (states * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp(min=1e-9)
    return total / (count.sqrt() if mode == "mean_sqrt_len" else count)


class SentenceClassifier(nn.Module):
    """encoder -> pooling -> (normalisation) -> classifier; `model(**tokens).logits` like transformers."""

    def __init__(self, encoder: nn.Module, classifier: nn.Linear, pooling: str = "mean", normalize: bool = False):
        super().__init__()
        self.encoder = encoder
        self.classifier = classifier
        self.pooling = pooling
        self.normalize = normalize

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if extra.get("token_type_ids") is not None:
            inputs["token_type_ids"] = extra["token_type_ids"]
        states = self.encoder(**inputs).last_hidden_state
        vectors = pool(states, attention_mask, self.pooling)
        return nn.functional.normalize(vectors, p=2, dim=-1) if self.normalize else vectors

    def get_input_embeddings(self) -> nn.Module:   # what the word-attribution explanation perturbs
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        return SimpleNamespace(logits=self.classifier(self.embed(input_ids, attention_mask,
                                                                 token_type_ids=token_type_ids)))


def uses_sentence_pooling(config) -> bool:
    """Runs whose text model is a SentenceClassifier: the linear probe (and SetFit)."""
    return config.strategy in ("linear_probe", "setfit")


def sentence_model_for(loaded, config):
    """`loaded` as the run trains it: text probes (and SetFit) read the encoder's own pooling."""
    if config.strategy == "setfit" and loaded.modality != "text":
        from tl_ui.core.config import ConfigError

        raise ConfigError("SetFit works on texts only. Pick another strategy for images (the linear probe "
                          "is the quickest).")
    if loaded.modality == "text" and uses_sentence_pooling(config):
        return to_sentence_classifier(loaded)
    return loaded


def to_sentence_classifier(loaded, source_folder: Optional[str | Path] = None):
    """The same LoadedModel with its model replaced by a SentenceClassifier over the same encoder
    weights and the same new classifier layer (DistilBERT's extra pre_classifier is dropped)."""
    from tl_ui.engine.models.build import _transformer_layer_groups

    hf_model = loaded.model
    encoder = hf_model.base_model
    head = dict(hf_model.named_modules())[loaded.head_names[-1]]
    config = sentence_config(source_folder if source_folder is not None else _source_folder(loaded.entry))
    model = SentenceClassifier(encoder, head, config["pooling"], config["normalize"])
    loaded.model = model
    loaded.head_names = ["classifier"]
    loaded.layer_groups = _transformer_layer_groups(model, ["classifier"])
    loaded.lora_fully_trained = []
    loaded.sentence = config
    return loaded


def _source_folder(entry) -> Optional[Path]:
    """The encoder's own folder, where its sentence-transformers config lives (packaged or in the HF cache)."""
    if entry.source == "packaged":
        from tl_ui.core.catalog import packaged_path

        return Path(packaged_path(entry))
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(entry.load_name, local_files_only=True,
                                      allow_patterns=["modules.json", "*/config.json"]))
    except Exception:   # not in the local cache: mean pooling with the attention mask
        return None
