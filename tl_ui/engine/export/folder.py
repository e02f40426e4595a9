"""The model folder: written as an ordinary timm / transformers / sentence-transformers folder with the
manifest (transfer_lab.json) and the model card, what the run's task adds included; read back (its manifest).

The folder is written under a temporary name and renamed into place only when complete, so a
crash or kill never leaves a half-written `model/`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from tl_ui.core.config import RunConfig
from tl_ui.core.folders import replace_when_done
from tl_ui.contracts import ExportManifest
from tl_ui.engine.models.fast_path import restore_layout
from tl_ui.engine.models.build import LoadedModel
from tl_ui.engine.export.sentence_export import FORMAT as SENTENCE_FORMAT, is_sentence_model, save_sentence_export
from tl_ui.core.runfolder import MANIFEST_JSON, RunFolder, parse_contract

MANIFEST = MANIFEST_JSON   # our own small manifest (an ExportManifest): modality, classes, base model


def export_model(loaded: LoadedModel, model: nn.Module, run: RunFolder, *, config: RunConfig,
                 data_summary: dict, metrics: dict, task, chosen: dict, familiarity=None) -> Path:
    """The run's model as `run.model_dir`. `task` (tl_ui/engine/tasks) says what its kind of task adds,
    from what it `chosen` on the validation examples: a calibration temperature is folded into the
    classifier layer (so the files give calibrated probabilities in plain timm / transformers) and the
    prediction-set thresholds go into the manifest; a multi-label run's thresholds go into the manifest
    and the model's own config; the model card is the task's."""
    out_dir = run.model_dir
    calibration = task.export_calibration(chosen) or {"temperature": 1.0, "thresholds": {}, "n_calibration": 0}
    with replace_when_done(out_dir, run.partial_model_dir()) as tmp:
        fold_temperature(model, loaded.head_names, float(calibration["temperature"]))
        restore_layout(model)   # channels-last weights (fast path) are saved plain
        if config.strategy == "lora":
            model.save_pretrained(str(tmp / "adapter"))     # the adapter alone (peft format)
            model = model.merge_and_unload()                  # ...and a merged, ordinary model
        sentence = is_sentence_model(model)
        task.mark_model(model, chosen, metrics)
        if loaded.modality == "image":
            _save_timm(loaded, model, tmp, task.timm_config(chosen, metrics))
        elif sentence:   # the text probe / SetFit: a sentence-transformers folder + the head (issue 13)
            save_sentence_export(model, loaded.tokenizer, tmp, config.max_length)
        else:
            model.save_pretrained(str(tmp))
            loaded.tokenizer.save_pretrained(str(tmp))
        manifest = {
            "format": "timm" if loaded.modality == "image" else (SENTENCE_FORMAT if sentence else "transformers"),
            "modality": loaded.modality,
            "classes": loaded.classes,
            "base_model": loaded.entry.id,
            "strategy": config.strategy,
            "image_size": loaded.image_size if loaded.modality == "image" else None,
            # how images were read (DICOM window preset; None: each file's own window), so that
            # Predictor / `predict` read new images the same way
            "image_window": None if config.dicom_window in (None, "header") else config.dicom_window,
            "image_reading": data_summary.get("image_reading"),
            "max_length": config.max_length if loaded.modality == "text" else None,
            "temperature": float(calibration["temperature"]),      # already folded into the weights
            "conformal": {"method": "LAC", "thresholds": calibration["thresholds"],
                          "n_calibration": calibration["n_calibration"], "default_level": config.set_level},
            **task.manifest_additions(chosen, metrics),
        }
        manifest = ExportManifest.model_validate(manifest).to_dict()   # the contract (docs/contracts.md)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if familiarity is not None:   # tl_ui.engine.inference.familiarity: the "unlike your training data" reference
            familiarity.save(tmp)
        (tmp / "README.md").write_text(task.model_card(loaded, config, data_summary, metrics), encoding="utf-8")
    return out_dir


def _save_timm(loaded: LoadedModel, model: nn.Module, folder: Path, extra: dict) -> None:
    """A timm folder (`save_for_hf`); `extra`: the task's keys for config.json."""
    from timm.models import save_for_hf

    cfg = loaded.data_config
    save_for_hf(
        model, str(folder), model_config={"label_names": list(loaded.classes), **extra}, safe_serialization=True,
        data_config={"input_size": cfg["input_size"], "mean": cfg["mean"], "std": cfg["std"],
                     "interpolation": cfg["interpolation"], "crop_pct": cfg["crop_pct"]},
    )


def fold_temperature(model: nn.Module, head_names: list[str], temperature: float) -> None:
    """softmax((W x + b) / T) == softmax((W/T) x + b/T): divide the classifier layer by T. With
    peft, the head's trainable copy (modules_to_save) and its original are both divided."""
    if abs(temperature - 1.0) < 1e-12:
        return
    last_parts = {name.split(".")[-1] for name in head_names}
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and last_parts & set(name.split(".")):
                module.weight.div_(temperature)
                if module.bias is not None:
                    module.bias.div_(temperature)


def read_manifest(model_dir: Path) -> Optional[dict]:
    """transfer_lab.json as a dict (through ExportManifest when it fits), or None without one."""
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_contract(ExportManifest, data, path) if isinstance(data, dict) else None
    return parsed.to_dict() if parsed is not None else data
