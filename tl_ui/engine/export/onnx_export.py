"""ONNX graphs of a finished run's model (issue 39): one graph from the model's input to its calibrated
probabilities, for ONNX Runtime in any language.

* images (timm: probe, partial, full, LoRA – the export folder already holds the merged model): input
  `pixels`, float32 NCHW, resized, cropped and normalised as `preprocess.json` says (timm's own data
  config of the model); output `probabilities`.
* texts: inputs `input_ids` and `attention_mask` (int64, batch × tokens) as the saved `tokenizer.json`
  makes them; output `probabilities`. A transformers sequence classifier (text LoRA, partial, full) or
  a sentence encoder with its pooling, normalisation and linear head in the same graph (text probe,
  SetFit).

The calibration temperature is already folded into the export folder's classifier layer (folder.py), so
the graph's softmax (sigmoid for multi-label runs) gives the calibrated probabilities the app shows. The
batch axis (and the token axis) are dynamic. The exporter is torch's TorchScript-based `torch.onnx.export
(dynamo=False)`: measured here on efficientnet_lite0 and MiniLM-L6 it exports in 3–6 s with the same
answers as the dynamo exporter (25–56 s); the dynamo exporter is the fallback when it fails. The torch
model is loaded afresh for each export and thrown away: the TorchScript tracer leaves a traced BERT's
attention in a changed state.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from tl_ui.engine.export.folder import read_manifest
from tl_ui.engine.export.sentence_export import FORMAT as SENTENCE_FORMAT, load_sentence_classifier

OPSET = 17
FP32_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
PREPROCESS_JSON, TOKENIZER_JSON = "preprocess.json", "tokenizer.json"
STANDALONE = Path(__file__).resolve().parents[2] / "standalone"   # predict_onnx.py and the Space's app.py: programs of their own, copied as they are


class OnnxExportError(ValueError):
    """The run cannot be exported as ONNX; the message says why and what to do."""


class _ImageProbabilities(nn.Module):
    """pixels -> logits -> the task's activation, as one graph. `site_temperature`: a version recalibrated for
    a new site shares its parent's weights (whose temperature is folded in) and divides by its own on top."""

    def __init__(self, model: nn.Module, activation: Callable, site_temperature: float = 1.0):
        super().__init__()
        self.model, self.activation, self.site_temperature = model, activation, float(site_temperature)

    def forward(self, pixels):
        return self.activation(self.model(pixels).float() / self.site_temperature)


class _TextProbabilities(_ImageProbabilities):
    """(input_ids, attention_mask) -> logits -> the task's activation, as one graph."""

    def forward(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        return self.activation(logits / self.site_temperature)


def load_for_export(model_dir: Path) -> tuple[nn.Module, dict, dict]:
    """(a fresh eval-mode torch model, the manifest, preprocess.json's content) from an export folder."""
    manifest = read_manifest(model_dir)
    if manifest is None:
        raise OnnxExportError("This run has no finished model to export. Train a model first, or pick a run "
                              "that finished.")
    classes = list(manifest["classes"])
    if manifest.get("format") == SENTENCE_FORMAT:
        model, tokenizer = load_sentence_classifier(model_dir)
        return model.eval(), manifest, _text_config(manifest, classes, tokenizer)
    if manifest.get("format") == "timm":
        import timm
        from timm.data import resolve_data_config

        model = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()
        cfg = resolve_data_config({}, model=model)
        size = [int(v) for v in cfg["input_size"]]
        return model, manifest, {
            "modality": "image", "classes": list(model.pretrained_cfg.get("label_names") or classes),
            "input_size": size, "mean": [float(v) for v in cfg["mean"]], "std": [float(v) for v in cfg["std"]],
            "interpolation": str(cfg.get("interpolation") or "bicubic"), "crop_pct": float(cfg.get("crop_pct") or 1.0),
            "crop_mode": str(cfg.get("crop_mode") or "center"),
            "resize_to": int(math.floor(size[-1] / float(cfg.get("crop_pct") or 1.0))),
            "image_window": manifest.get("image_window"),
        }
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return model, manifest, _text_config(manifest, labels, tokenizer)


def _text_config(manifest: dict, classes: list[str], tokenizer) -> dict:
    if not getattr(tokenizer, "is_fast", False):
        raise OnnxExportError("This text model's tokenizer has no tokenizer.json (a 'fast' tokenizer), which "
                              "the ONNX files need. Pick a run of another base model.")
    return {"modality": "text", "classes": classes, "max_length": int(manifest.get("max_length") or 128),
            "pad_id": int(tokenizer.pad_token_id or 0), "pad_token": str(tokenizer.pad_token or "[PAD]"),
            "_tokenizer": tokenizer}


def export_fp32(model_dir: Path, out_dir: Path, activation: Callable) -> dict:
    """Write OUT/model.onnx, OUT/preprocess.json (and OUT/tokenizer.json for texts); returns preprocess.json's
    content (with `opset` and `exporter`)."""
    model, manifest, config = load_for_export(Path(model_dir))
    tokenizer = config.pop("_tokenizer", None)
    image = config["modality"] == "image"
    site_temperature = float(manifest.get("site_temperature") or 1.0)
    wrapper = (_ImageProbabilities if image else _TextProbabilities)(model, activation, site_temperature).eval()
    if image:
        size = config["input_size"]
        example = (torch.zeros(2, *size),)
        names, axes = ["pixels"], {"pixels": {0: "batch"}}
    else:
        encoded = tokenizer(["an example text", "a second, somewhat longer example text"], padding=True,
                            return_tensors="pt")
        example = (encoded["input_ids"], encoded["attention_mask"])
        names = ["input_ids", "attention_mask"]
        axes = {name: {0: "batch", 1: "tokens"} for name in names}
        backend = tokenizer.backend_tokenizer
        backend.no_truncation()   # predict_onnx.py sets the run's truncation and padding itself
        backend.no_padding()
        backend.save(str(Path(out_dir) / TOKENIZER_JSON))
    target = Path(out_dir) / FP32_FILE
    with torch.no_grad():
        try:
            with warnings.catch_warnings():   # torch says the TorchScript exporter is deprecated: chosen knowingly
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(wrapper, example, str(target), input_names=names, output_names=["probabilities"],
                                  dynamic_axes={**axes, "probabilities": {0: "batch"}}, opset_version=OPSET,
                                  dynamo=False)
            exporter = "torch.onnx (TorchScript)"
        except Exception:   # the TorchScript exporter cannot trace it (or is gone): torch.export (dynamo)
            batch = torch.export.Dim("batch", min=1, max=65536)
            if image:
                shapes = {"pixels": {0: batch}}
            else:
                tokens = torch.export.Dim("tokens", min=2, max=4096)
                shapes = {name: {0: batch, 1: tokens} for name in names}
            torch.onnx.export(wrapper, example, str(target), input_names=names, output_names=["probabilities"],
                              dynamic_shapes=shapes, opset_version=18, dynamo=True, external_data=False)
            exporter = "torch.onnx (dynamo)"
    import onnx

    graph = onnx.load(str(target))
    opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    meta = {"classes": json.dumps(config["classes"]), "temperature": str(manifest.get("temperature", 1.0)),
            "site_temperature": str(site_temperature),
            "base_model": str(manifest.get("base_model", "")), "strategy": str(manifest.get("strategy", "")),
            "made_by": "Transfer Lab"}
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(target))
    config.update({"opset": int(opset), "exporter": exporter, "temperature": float(manifest.get("temperature", 1.0)),
                   "temperature_folded": True, "site_temperature": site_temperature,
                   "base_model": manifest.get("base_model"),
                   "strategy": manifest.get("strategy"), "multi_label": bool(manifest.get("multilabel")),
                   "inputs": names, "output": "probabilities"})
    (Path(out_dir) / PREPROCESS_JSON).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return config


def quantize_int8(out_dir: Path, config: dict, calibration_items: list) -> dict:
    """OUT/model.int8.onnx: dynamic int8 (weights int8, activations quantised on the fly) for texts; static
    int8 (QDQ, per-channel weights) for images, its activation ranges from `calibration_items` (training
    images) read through the same preprocessing as predict_onnx.py."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    source, target = Path(out_dir) / FP32_FILE, Path(out_dir) / INT8_FILE
    if config["modality"] == "text":
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        return {"method": "dynamic (onnxruntime.quantization.quantize_dynamic, int8 weights)", "n_calibration": 0}
    if not calibration_items:
        raise OnnxExportError("The int8 model needs some of the run's training images to calibrate on, and "
                              "none could be read. Export without int8, or make the training data reachable.")
    standalone = load_standalone(out_dir)

    class Reader(CalibrationDataReader):
        def __init__(self, items):
            self.batches = iter([items[i:i + 8] for i in range(0, len(items), 8)])

        def get_next(self):
            chunk = next(self.batches, None)
            return None if chunk is None else {"pixels": standalone.image_pixels(chunk)}

    with tempfile.TemporaryDirectory(prefix="tl-quant-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        try:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        except Exception:   # the optimisation before quantising is a nicety: quantise the graph as it is
            shutil.copyfile(source, prepared)
        # convolutions and the linear layers only: the softmax and the additions stay fp32 (quantising every op
        # cost efficientnet_lite0 on the sample digits 58 accuracy points here, these 25)
        quantize_static(str(prepared), str(target), Reader(list(calibration_items)), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Gemm", "MatMul"])
    return {"method": "static (onnxruntime.quantization.quantize_static, QDQ, per-channel int8 weights, "
                      "convolutions and linear layers)",
            "n_calibration": len(calibration_items)}


def copy_standalone(out_dir: Path, name: str) -> Path:
    target = Path(out_dir) / name
    shutil.copyfile(STANDALONE / name, target)
    return target


def load_standalone(out_dir: Path):
    """The folder's own predict_onnx.py as a module (the preprocessing every user of the files runs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"predict_onnx_{abs(hash(str(out_dir)))}",
                                                  Path(out_dir) / "predict_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def onnx_probabilities(out_dir: Path, items: list, model_file: str = FP32_FILE, batch_size: int = 16) -> np.ndarray:
    """Probabilities from an ONNX file of `out_dir` through its predict_onnx.py (rows in `items` order)."""
    standalone = load_standalone(out_dir)
    session = standalone.session(model_file)
    rows = [standalone.probabilities(items[i:i + batch_size], session) for i in range(0, len(items), batch_size)]
    return np.concatenate(rows) if rows else np.empty((0, 0), dtype=np.float32)


def owner_only(folder: Path) -> None:
    """0700 folders, 0600 files (the export may hold a model of private data)."""
    import os

    for path in [Path(folder), *Path(folder).rglob("*")]:
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
