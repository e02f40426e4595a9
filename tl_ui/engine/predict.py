"""Load an exported model the way an outside user would (timm `local-dir:` / transformers) and predict."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from tl_ui.engine.export import read_manifest


class PredictError(ValueError):
    """The run has no usable model, or an input cannot be read; the message says what to do."""


class Predictor:
    def __init__(self, model, classes: list[str], modality: str, *, transform=None, tokenizer=None,
                 max_length: int = 128):
        self.model = model.eval()
        self.classes = classes
        self.modality = modality
        self.transform = transform
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def load(cls, run_or_model_dir: str | Path) -> "Predictor":
        folder = Path(run_or_model_dir)
        if (folder / "model").is_dir():
            folder = folder / "model"
        manifest = read_manifest(folder)
        if manifest is None or not (folder / "config.json").exists():
            raise PredictError("This run has no finished model to predict with. Train a model first, or "
                               "pick a run that finished.")
        if manifest["format"] == "timm":
            import timm
            from timm.data import create_transform, resolve_data_config

            model = timm.create_model(f"local-dir:{folder}", pretrained=True)
            transform = create_transform(**resolve_data_config({}, model=model))
            classes = list(model.pretrained_cfg.get("label_names") or manifest["classes"])
            return cls(model, classes, "image", transform=transform)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        classes = [model.config.id2label[i] for i in range(model.config.num_labels)]
        return cls(model, classes, "text", tokenizer=tokenizer, max_length=manifest.get("max_length") or 128)

    @torch.no_grad()
    def predict_proba(self, inputs: Sequence[Any], batch_size: int = 8) -> torch.Tensor:
        # batch 8: on CPU larger batches are slower per example (docs/benchmarks.md, section 7)
        rows = []
        for start in range(0, len(inputs), batch_size):
            chunk = list(inputs[start:start + batch_size])
            if self.modality == "image":
                from tl_ui.engine.inputs import open_image

                try:
                    pixels = torch.stack([self.transform(open_image(x)) for x in chunk])
                except (OSError, ValueError) as exc:
                    raise PredictError(f"Could not read the image: {exc}. Use a PNG or JPEG picture.") from None
                logits = self.model(pixels)
            else:
                if any(not isinstance(x, str) or not x.strip() for x in chunk):
                    raise PredictError("Type some text to classify.")
                encoded = self.tokenizer(chunk, truncation=True, max_length=self.max_length, padding=True,
                                         return_tensors="pt")
                logits = self.model(**encoded).logits
            rows.append(logits.float().softmax(-1))
        return torch.cat(rows) if rows else torch.empty(0, len(self.classes))

    def predict(self, inputs: Sequence[Any]) -> list[dict[str, float]]:
        """For each input, {class: probability}, most likely first."""
        probs = self.predict_proba(inputs)
        out = []
        for row in probs.tolist():
            pairs = sorted(zip(self.classes, row), key=lambda kv: -kv[1])
            out.append({label: float(p) for label, p in pairs})
        return out


def predictions_json(predictor: Predictor, inputs: Sequence[Any]) -> str:
    results = predictor.predict(inputs)
    return json.dumps([{"input": str(x), "probabilities": r, "predicted": next(iter(r))}
                       for x, r in zip(inputs, results)], indent=2)
