"""The model card of a multi-label run: per-label scores with intervals, the thresholds and how to
apply them (issue 15; tl_ui/engine/tasks/multi_label.py writes it through `MultiLabelTask.model_card`)."""
from __future__ import annotations

from tl_ui.core.config import STRATEGY_HELP, RunConfig
from tl_ui.engine.export.sentence_export import CARD_SNIPPET as SENTENCE_SNIPPET

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


def _ci(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci and len(ci) == 2 else ""


def _ap(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def multilabel_card(loaded, config: RunConfig, data_summary: dict, metrics: dict) -> str:
    block = metrics["multilabel"]
    sentences = block.get("sentences", {})
    rows = "\n".join(
        f"| {name} | {m['threshold']:.3f} | {m['precision']:.3f} {_ci(m['precision_ci'])} | {m['recall']:.3f} "
        f"{_ci(m['recall_ci'])} | {m['f1']:.3f} | {_ap(m['average_precision'])} "
        f"| {m['tp']} / {m['fp']} / {m['fn']} / {m['tn']} |"
        for name, m in block["per_label"].items())
    counts = "\n".join(f"| {n} | {c} |" for n, c in (data_summary.get("classes") or {}).items())
    if loaded.modality == "image":
        how_to = ("```python\nimport timm, torch\nfrom PIL import Image\n"
                  "model = timm.create_model('local-dir:PATH/TO/model', pretrained=True).eval()\n"
                  "transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))\n"
                  "scores = model(transform(Image.open('x.png').convert('RGB')).unsqueeze(0)).sigmoid()[0]\n"
                  "names = model.pretrained_cfg['label_names']\n"
                  "scores = dict(zip(names, scores.tolist()))\n```")
        where = " and in `config.json` under `label_thresholds`"
    elif getattr(loaded, "sentence", None):
        how_to = SENTENCE_SNIPPET.replace(".softmax(-1)", ".sigmoid()")
        where = ""
    else:
        how_to = ("```python\nfrom transformers import pipeline\n"
                  "classify = pipeline('text-classification', model='PATH/TO/model', top_k=None,\n"
                  "                    function_to_apply='sigmoid')\n"
                  "scores = {r['label']: r['score'] for r in classify('your text here')}\n```")
        where = " and in `config.json` under `label_thresholds`"
    evaluation = metrics.get("evaluation") or {}
    mean_ap = block.get("mean_average_precision")
    return f"""---
library_name: {"timm" if loaded.modality == "image" else ("sentence-transformers" if getattr(loaded, "sentence", None) else "transformers")}
tags: [transfer-lab, {loaded.modality}-classification, multi-label-classification]
---
# Multi-label {loaded.modality} classifier trained with Transfer Lab

* **Base model:** {loaded.entry.display_name} (`{loaded.entry.load_name}`, licence {loaded.entry.licence})
* **Strategy:** `{config.strategy}` – {STRATEGY_HELP[config.strategy]}
* **Scratch baseline (random initial weights):** {"yes" if config.random_init else "no"}
* **Training data:** {data_summary.get("n_examples", "?")} examples from `{data_summary.get("source", "")}`,
  {len(block["labels"])} labels (a case can have several, or none); {metrics.get("n_train", "?")} used for training,
  {evaluation.get("n_chosen", "?")} for validation (choosing the epoch and each label's threshold) and {block["n"]}
  held out as test examples that took part in nothing else.

| label | examples |
|---|---|
{counts}

## How well it works (on {block["n"]} test examples; 95% intervals in brackets)

* Micro-F1: **{block["micro_f1"]:.3f}** {_ci(block["micro_f1_ci"])}. {sentences.get("micro_f1", "")}
* Macro-F1: **{block["macro_f1"]:.3f}** {_ci(block["macro_f1_ci"])}. {sentences.get("macro_f1", "")}
* Subset accuracy: **{block["subset_accuracy"]:.3f}** {_ci(block["subset_accuracy_ci"])}. {sentences.get("subset_accuracy", "")}
* Hamming loss: **{block["hamming_loss"]:.3f}** {_ci(block["hamming_loss_ci"])}. {sentences.get("hamming_loss", "")}
* Mean average precision: {"n/a" if mean_ap is None else f"**{mean_ap:.3f}** {_ci(block.get('mean_average_precision_ci'))}"}

| label | threshold | precision | recall | F1 | average precision | TP / FP / FN / TN |
|---|---|---|---|---|---|---|
{rows}

With {block["n"]} test examples these figures are estimates; check the model on new data from where it will be used.

{CARD_NOTE.format(config=where)}
## Intended use and limits

Built by a domain expert for their own task with a small labelled dataset. It knows only the labels
above. It inherits the biases of its base model and of the training examples. Do not use it for
decisions about people without independent validation.

## How to load it
{how_to}

The exact training settings are in `run.json` next to this folder (replay:
`python -m tl_ui train --config run.json --out DIR`).
"""
