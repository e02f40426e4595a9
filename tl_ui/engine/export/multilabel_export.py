"""What a multi-label export carries besides the weights (issue 15).

transformers: `config.problem_type = "multi_label_classification"` (so `pipeline("text-classification",
top_k=None, function_to_apply="sigmoid")` gives every label's score) and `config.label_thresholds`;
timm: `label_names`, `problem_type` and `label_thresholds` in its config.json (export.py);
every format: `multilabel.thresholds` in model/transfer_lab.json.
"""
from __future__ import annotations

from torch import nn


def mark_multilabel(model: nn.Module, multilabel: dict) -> None:
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        return   # timm / sentence-transformers exports: their config is written in export.py / the manifest
    config.problem_type = "multi_label_classification"
    config.label_thresholds = {str(k): float(v) for k, v in multilabel["thresholds"].items()}


def apply_thresholds(scores: dict, thresholds: dict) -> list[str]:
    """The labels whose score reaches their threshold, highest score first."""
    return [name for name, p in sorted(scores.items(), key=lambda kv: -kv[1]) if p >= float(thresholds.get(name, 0.5))]


CARD_NOTE = """### Applying the thresholds (multi-label)

Each label has its own sigmoid score between 0 and 1; a case can have several labels, or none.
A label applies when its score reaches its threshold (chosen on the validation examples, listed
in the table above and stored in `transfer_lab.json` under `multilabel.thresholds`{config}):

```python
import json
thresholds = json.load(open("PATH/TO/model/transfer_lab.json"))["multilabel"]["thresholds"]
labels = [name for name, score in scores.items() if score >= thresholds[name]]
```
"""


def multilabel_answers(predictor, inputs) -> list[dict]:
    """Predictor.predict_with_set for a multi-label model: for each input {"probabilities": every label's
    sigmoid score (highest first), "labels": those at or above their threshold, "thresholds",
    "set_sentence": the labels in words, "prediction_set": None, "set_level": None} and the
    "unlike your training data" flag."""
    from tl_ui.engine.inference.familiarity import judge_recorded, recording
    from tl_ui.engine.models.fast_path import length_order

    thresholds = {str(k): float(v) for k, v in (predictor.multilabel.get("thresholds") or {}).items()}
    order = length_order(list(inputs)) if predictor.modality == "text" else list(range(len(inputs)))
    with recording() as features:
        probs = predictor.predict_proba([inputs[i] for i in order]).numpy()
    unlike = judge_recorded(predictor.familiarity, features, len(probs))
    out = []
    for row, flag in zip(probs, unlike):
        scores = {c: float(p) for c, p in sorted(zip(predictor.classes, row.tolist()), key=lambda kv: -kv[1])}
        labels = apply_thresholds(scores, thresholds)
        sentence = (f"Labels: {', '.join(labels)} (each score at or above its threshold)." if labels else
                    "None of the labels: no score reached its threshold.")
        out.append({"probabilities": scores, "labels": labels, "thresholds": thresholds, "prediction_set": None,
                    "set_level": None, "set_sentence": sentence, **flag})
    in_order: list = [None] * len(out)
    for position, index in enumerate(order):
        in_order[index] = out[position]
    return in_order
