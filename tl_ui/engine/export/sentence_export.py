"""Exports of sentence-encoder runs (the text probe, SetFit) that load where sentence encoders load.

    model/encoder/            a sentence-transformers folder: the encoder, its pooling and normalisation
    model/head.safetensors    the classifier layer: `weight` (classes x width) and `bias`, calibrated
    model/transfer_lab.json   the manifest (format "sentence-transformers", the classes in order)

No pickle anywhere (SetFit's own layout keeps its head with joblib, so it is not written).
`load_sentence_classifier` rebuilds the app's `SentenceClassifier` from those files for Predictor.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from tl_ui.engine.models.sentence import SentenceClassifier, sentence_config

FORMAT = "sentence-transformers"
ENCODER_DIR = "encoder"
HEAD_FILE = "head.safetensors"
_ST_POOLING = {"mean": "mean", "cls": "cls", "max": "max", "mean_sqrt_len": "mean_sqrt_len_tokens"}

CARD_SNIPPET = """```python
import json, torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
encoder = SentenceTransformer("PATH/TO/model/encoder", device="cpu")
head = load_file("PATH/TO/model/head.safetensors")
classes = json.load(open("PATH/TO/model/transfer_lab.json"))["classes"]
probs = (encoder.encode(["your text here"], convert_to_tensor=True) @ head["weight"].T + head["bias"]).softmax(-1)
```
The encoder folder is an ordinary sentence-transformers model (mean pooling and normalisation as the
base model was trained); `head.safetensors` is the calibrated linear classifier on its embeddings."""


def is_sentence_model(model: nn.Module) -> bool:
    return isinstance(model, SentenceClassifier)


def save_sentence_export(model: SentenceClassifier, tokenizer, folder: Path, max_length: int) -> None:
    """Write the encoder as a sentence-transformers folder and the head as safetensors into `folder`."""
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    try:   # sentence-transformers 6 moved the modules (the old path warns that it is deprecated)
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer

    plain = folder / ".encoder-hf"
    model.encoder.save_pretrained(str(plain), safe_serialization=True)
    tokenizer.save_pretrained(str(plain))
    try:
        transformer = Transformer(str(plain), max_seq_length=int(max_length))
        modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=_ST_POOLING[model.pooling])]
        if model.normalize:
            modules.append(Normalize())
        SentenceTransformer(modules=modules, device="cpu").save(str(folder / ENCODER_DIR), create_model_card=False)
    finally:
        shutil.rmtree(plain, ignore_errors=True)
    head = model.classifier
    save_file({"weight": head.weight.detach().float().cpu().contiguous(),
               "bias": head.bias.detach().float().cpu().contiguous()}, str(folder / HEAD_FILE))


def load_sentence_classifier(folder: Path) -> tuple[SentenceClassifier, object]:
    """(SentenceClassifier, tokenizer) from an export folder, with plain transformers + safetensors."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    encoder_dir = Path(folder) / ENCODER_DIR
    encoder = AutoModel.from_pretrained(str(encoder_dir), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir), local_files_only=True)
    head = load_file(str(Path(folder) / HEAD_FILE))
    classifier = nn.Linear(head["weight"].shape[1], head["weight"].shape[0])
    with torch.no_grad():
        classifier.weight.copy_(head["weight"])
        classifier.bias.copy_(head["bias"])
    config = sentence_config(encoder_dir)
    return SentenceClassifier(encoder, classifier, config["pooling"], config["normalize"]), tokenizer
