"""What a prediction rests on: Grad-CAM maps for images (the `grad-cam` package) and per-word
attributions for texts (captum's LayerIntegratedGradients on the input embeddings).

Both explain a `Predictor`, i.e. the exported model exactly as `Predictor.load` and outside users
load it. A map shows where the model looked for the class it explains; it does not prove the model
is right. Tests check that maps depend on the trained weights (Adebayo et al. 2018, "Sanity checks
for saliency maps"): the same architecture with random weights gives a different map.
"""
from __future__ import annotations

import html
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from tl_ui.engine.inference.predict import PredictError, Predictor

TEXT_STEPS = 32  # integration steps: the completeness gap stays small at this count for MiniLM-sized models


def explain(predictor: Predictor, item: Any, target: Optional[str] = None) -> dict:
    """Explain the prediction for one image (path or PIL image) or text. `target`: the class to
    explain (default: the predicted one)."""
    if predictor.modality == "image":
        return explain_image(predictor, item, target)
    return explain_text(predictor, item, target)


def _target_index(predictor: Predictor, probs: torch.Tensor, target: Optional[str]) -> int:
    if target is None:
        return int(probs.argmax())
    if target not in predictor.classes:
        raise PredictError(f"'{target}' is not one of this model's classes: {', '.join(predictor.classes)}.")
    return predictor.classes.index(target)


def _summary(predictor: Predictor, probs: torch.Tensor, index: int) -> dict:
    return {"class": predictor.classes[index], "probability": float(probs[index]),
            "predicted": predictor.classes[int(probs.argmax())]}


# --------------------------------------------------------------------------- images


def cam_layer(model: nn.Module) -> nn.Module:
    """The last layer with a spatial map: timm's EfficientNet/MobileNet family ends its features with
    `bn2` (norm + activation after the head convolution); otherwise the last convolution."""
    if isinstance(getattr(model, "bn2", None), nn.Module):
        return model.bn2
    convolutions = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convolutions:
        raise PredictError("This image model has no convolutional layer to explain with Grad-CAM.")
    return convolutions[-1]


def _shown_pixels(pixels: torch.Tensor, transform) -> np.ndarray:
    """The model's input as the person sees it: normalisation undone, HxWx3 floats in [0, 1]."""
    normalise = next((t for t in reversed(getattr(transform, "transforms", [])) if hasattr(t, "mean")), None)
    image = pixels.detach().float()
    if normalise is not None:
        mean = torch.as_tensor(normalise.mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.as_tensor(normalise.std, dtype=image.dtype).view(-1, 1, 1)
        image = image * std + mean
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def explain_image(predictor: Predictor, item: Any, target: Optional[str] = None) -> dict:
    """{"class", "probability", "predicted", "heatmap": HxW floats in [0, 1] at the model's input size,
    "overlay": a PIL image of the input with the map laid over it}."""
    from PIL import Image
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from tl_ui.engine.models.inputs import open_image

    try:
        pixels = predictor.transform(open_image(item, predictor.window)).unsqueeze(0)
    except (OSError, ValueError) as exc:
        raise PredictError(f"Could not read the image: {exc}. Use a PNG, JPEG, TIFF or DICOM file.") from None
    model = predictor.model.eval()
    with torch.no_grad():
        logits = model(pixels).float() / getattr(predictor, "site_temperature", 1.0)   # a recalibrated version's own
        probs = (logits.sigmoid() if getattr(predictor, "multilabel", None) else logits.softmax(-1))[0]
    index = _target_index(predictor, probs, target)
    with GradCAM(model=model, target_layers=[cam_layer(model)]) as cam:
        heatmap = cam(input_tensor=pixels, targets=[ClassifierOutputTarget(index)])[0]
    overlay = show_cam_on_image(_shown_pixels(pixels[0], predictor.transform), heatmap, use_rgb=True,
                                image_weight=0.6)
    return {**_summary(predictor, probs, index), "kind": "image", "heatmap": heatmap,
            "overlay": Image.fromarray(overlay)}


# --------------------------------------------------------------------------- texts


def explain_text(predictor: Predictor, text: str, target: Optional[str] = None, steps: int = TEXT_STEPS) -> dict:
    """{"class", "probability", "predicted", "words": [{"text", "start", "end", "weight"}] in reading
    order (weight > 0: pushed towards the class, < 0: away from it; the largest |weight| is 1),
    "completeness_gap": |sum of attributions - (f(text) - f(baseline))| (integrated gradients'
    own check; small means the integral was computed finely enough), "html"}."""
    from captum.attr import LayerIntegratedGradients

    if not isinstance(text, str) or not text.strip():
        raise PredictError("Type some text to explain.")
    tokenizer, model = predictor.tokenizer, predictor.model.eval()
    encoded = tokenizer(text, truncation=True, max_length=predictor.max_length, return_tensors="pt",
                        return_offsets_mapping=True)
    offsets = encoded.pop("offset_mapping")[0].tolist()
    input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
    special = torch.tensor(tokenizer.get_special_tokens_mask(input_ids[0].tolist(), already_has_special_tokens=True),
                           dtype=torch.bool)
    # Baseline: the same frame ([CLS] ... [SEP]) with every word replaced by padding.
    baseline = torch.where(special, input_ids[0], torch.full_like(input_ids[0], tokenizer.pad_token_id)).unsqueeze(0)

    def probabilities(ids, mask):
        logits = model(input_ids=ids, attention_mask=mask).logits.float()   # multi-label: each label's own score
        logits = logits / getattr(predictor, "site_temperature", 1.0)   # a recalibrated version's own temperature
        return logits.sigmoid() if getattr(predictor, "multilabel", None) else logits.softmax(-1)

    with torch.no_grad():
        probs = probabilities(input_ids, attention_mask)[0]
    index = _target_index(predictor, probs, target)
    attributions, gap = LayerIntegratedGradients(probabilities, model.get_input_embeddings()).attribute(
        inputs=input_ids, baselines=baseline, additional_forward_args=(attention_mask,), target=index,
        n_steps=steps, return_convergence_delta=True)
    per_token = attributions.sum(-1)[0].detach()
    words = _words(text, encoded.word_ids(0), offsets, per_token.tolist())
    return {**_summary(predictor, probs, index), "kind": "text", "words": words,
            "completeness_gap": float(gap.abs().max()), "html": words_html(words, predictor.classes[index])}


def _words(text: str, word_ids: list, offsets: list, scores: list[float]) -> list[dict]:
    """Word pieces merged into the words of `text` (a word's weight: the sum over its pieces)."""
    merged: dict[int, dict] = {}
    for word, (start, end), score in zip(word_ids, offsets, scores):
        if word is None:
            continue  # [CLS], [SEP]
        entry = merged.setdefault(word, {"start": start, "end": end, "weight": 0.0})
        entry["end"], entry["weight"] = end, entry["weight"] + score
    largest = max((abs(w["weight"]) for w in merged.values()), default=0.0) or 1.0
    return [{"text": text[w["start"]:w["end"]], "start": w["start"], "end": w["end"],
             "weight": round(w["weight"] / largest, 4)} for _, w in sorted(merged.items())]


def words_html(words: list[dict], class_name: str) -> str:
    """Words shaded by weight (blue: towards the class, orange: away), each with its weight as a
    tooltip, and the strongest words in plain text for screen readers."""
    spans = []
    for w in words:
        colour = "37, 99, 235" if w["weight"] >= 0 else "234, 88, 12"
        spans.append(f'<span title="{w["weight"]:+.2f}" style="background: rgba({colour}, '
                     f'{0.75 * abs(w["weight"]):.2f}); border-radius: 3px; padding: 0 1px">{html.escape(w["text"])}</span>')
    strongest = [w["text"] for w in sorted(words, key=lambda w: -w["weight"]) if w["weight"] > 0][:5]
    summary = (f"Words that pushed most towards “{html.escape(class_name)}”: "
               + (", ".join(html.escape(s) for s in strongest) if strongest else "none") + ".")
    return (f'<div class="tl-explanation"><p>{" ".join(spans)}</p>'
            f'<p class="tl-explanation-summary">{summary}</p></div>')
