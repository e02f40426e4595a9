"""Load an exported model the way an outside user would (timm `local-dir:` / transformers /
sentence-transformers) and predict; the export's task (tl_ui/engine/tasks, from its manifest) turns the
logits into probabilities and answers."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from tl_ui.engine.export.folder import read_manifest
from tl_ui.engine.export.sentence_export import FORMAT as SENTENCE_FORMAT, load_sentence_classifier
from tl_ui.engine.inference import familiarity
from tl_ui.engine.models.fast_path import image_input, length_order, prepare_model
from tl_ui.engine.tasks import task_for_export


class PredictError(ValueError):
    """The run has no usable model, or an input cannot be read; the message says what to do."""


class Predictor:
    def __init__(self, model, classes: list[str], modality: str, *, transform=None, tokenizer=None,
                 max_length: int = 128, conformal: Optional[dict] = None, window: Optional[str] = None,
                 manifest: Optional[dict] = None):
        self.model = prepare_model(model.eval(), modality)   # channels-last for images (fast path)
        self.classes = classes
        self.modality = modality
        self.transform = transform
        self.tokenizer = tokenizer
        self.max_length = max_length
        # the export's transfer_lab.json: its task's blocks (conformal thresholds, multi-label thresholds ...)
        self.manifest = dict(manifest or {})
        if conformal is not None:
            self.manifest["conformal"] = conformal
        self.task = task_for_export(self.manifest, classes)
        # a version recalibrated for a new site (issue 34) shares its parent's weights: its own temperature is
        # applied here, on top of the parent's (folded into the weights)
        self.site_temperature = float(self.manifest.get("site_temperature") or 1.0)
        self.window = window               # DICOM window preset the model was trained with
        self.familiarity = None            # tl_ui.engine.inference.familiarity reference (None: an older export)

    @property
    def conformal(self) -> dict:
        """{"thresholds": {level: qhat}, "default_level", "n_calibration"} of a single-label export, or {}."""
        return self.manifest.get("conformal") or {}

    @classmethod
    def load(cls, run_or_model_dir: str | Path) -> "Predictor":
        folder = Path(run_or_model_dir)
        folder = folder / "model" if (folder / "model").is_dir() else folder
        predictor = cls._load_model(folder)
        predictor.familiarity = familiarity.attach(predictor.model, folder)   # the "unlike your training data" reference
        return predictor

    @classmethod
    def _load_model(cls, run_or_model_dir: str | Path) -> "Predictor":
        folder = Path(run_or_model_dir)
        if (folder / "model").is_dir():
            folder = folder / "model"
        manifest = read_manifest(folder)
        if manifest is not None and manifest.get("format") == SENTENCE_FORMAT:
            model, tokenizer = load_sentence_classifier(folder)
            return cls(model, list(manifest["classes"]), "text", tokenizer=tokenizer,
                       max_length=manifest.get("max_length") or 128, manifest=manifest)
        if manifest is None or not (folder / "config.json").exists():
            raise PredictError("This run has no finished model to predict with. Train a model first, or "
                               "pick a run that finished.")
        if manifest["format"] == "timm":
            import timm
            from timm.data import create_transform, resolve_data_config

            model = timm.create_model(f"local-dir:{folder}", pretrained=True)
            transform = create_transform(**resolve_data_config({}, model=model))
            classes = list(model.pretrained_cfg.get("label_names") or manifest["classes"])
            return cls(model, classes, "image", transform=transform, window=manifest.get("image_window"),
                       manifest=manifest)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        classes = [model.config.id2label[i] for i in range(model.config.num_labels)]
        return cls(model, classes, "text", tokenizer=tokenizer, max_length=manifest.get("max_length") or 128,
                   manifest=manifest)

    @torch.no_grad()
    def predict_proba(self, inputs: Sequence[Any], batch_size: int = 8) -> torch.Tensor:
        # batch 8: on CPU larger batches are slower per example (docs/benchmarks.md, section 7)
        order = length_order(list(inputs)) if self.modality == "text" else list(range(len(inputs)))
        inputs = [inputs[i] for i in order]   # texts of similar length share a batch: less padding
        rows = []
        for start in range(0, len(inputs), batch_size):
            chunk = list(inputs[start:start + batch_size])
            if self.modality == "image":
                from tl_ui.engine.models.inputs import open_image

                try:
                    pixels = torch.stack([self.transform(open_image(x, self.window)) for x in chunk])
                except (OSError, ValueError) as exc:
                    raise PredictError(f"Could not read the image: {exc}. Use a PNG, JPEG, TIFF or DICOM "
                                       "file.") from None
                logits = self.model(image_input(pixels))   # full precision: the downloaded model's answers
            else:
                if any(not isinstance(x, str) or not x.strip() for x in chunk):
                    raise PredictError("Type some text to classify.")
                encoded = self.tokenizer(chunk, truncation=True, max_length=self.max_length, padding=True,
                                         return_tensors="pt")
                logits = self.model(**encoded).logits
            rows.append(self.task.activation(logits.float() / self.site_temperature))
        if not rows:
            return torch.empty(0, len(self.classes))
        probs = torch.empty_like(torch.cat(rows))
        probs[order] = torch.cat(rows)   # back in the caller's order
        return probs

    def predict(self, inputs: Sequence[Any]) -> list[dict[str, float]]:
        """For each input, {class: probability}, most likely first."""
        probs = self.predict_proba(inputs)
        out = []
        for row in probs.tolist():
            pairs = sorted(zip(self.classes, row), key=lambda kv: -kv[1])
            out.append({label: float(p) for label, p in pairs})
        return out


    def predict_with_set(self, inputs: Sequence[Any], level: Optional[float] = None) -> list[dict]:
        """For each input, the task's answer (single-label: {"probabilities": {class: p} calibrated, most
        likely first, "prediction_set", "set_level", "set_sentence"}; multi-label: every label's score and
        "labels" at or above their thresholds) and whether the input looks unlike the training data
        (`unlike_training_data`, its score, threshold and sentence; None without a reference)."""
        # texts in the order predict_proba runs them (by length), so that the features recorded for the
        # "unlike" flag line up with the rows; the answers go back in the caller's order at the end
        order = length_order(list(inputs)) if self.modality == "text" else list(range(len(inputs)))
        with familiarity.recording() as features:   # what the classifier layer reads, for the "unlike" flag
            probs = self.predict_proba([inputs[i] for i in order]).numpy()
        unlike = familiarity.judge_recorded(self.familiarity, features, len(probs))
        answers = self.task.answers(probs, self.manifest, level)
        in_order: list = [None] * len(answers)
        for position, index in enumerate(order):
            in_order[index] = {**answers[position], **unlike[position]}
        return in_order
