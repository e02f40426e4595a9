"""Write the trained model as an ordinary timm / transformers folder, plus a model card.

The folder is written under a temporary name and renamed into place only when complete, so a
crash or kill never leaves a half-written `model/`.
"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Optional

from torch import nn

from tl_ui.config import STRATEGY_HELP, RunConfig
from tl_ui.engine.models import LoadedModel

MANIFEST = "transfer_lab.json"   # our own small manifest: modality, classes, base model


def export_model(loaded: LoadedModel, model: nn.Module, out_dir: Path, *, config: RunConfig,
                 data_summary: dict, metrics: dict) -> Path:
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        if config.strategy == "lora":
            model.save_pretrained(str(tmp / "adapter"))     # the adapter alone (peft format)
            model = model.merge_and_unload()                  # ...and a merged, ordinary model
        if loaded.modality == "image":
            _save_timm(loaded, model, tmp)
        else:
            model.save_pretrained(str(tmp))
            loaded.tokenizer.save_pretrained(str(tmp))
        manifest = {
            "format": "timm" if loaded.modality == "image" else "transformers",
            "modality": loaded.modality,
            "classes": loaded.classes,
            "base_model": loaded.entry.id,
            "strategy": config.strategy,
            "image_size": loaded.image_size if loaded.modality == "image" else None,
            "max_length": config.max_length if loaded.modality == "text" else None,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        (tmp / "README.md").write_text(model_card(loaded, config, data_summary, metrics), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _save_timm(loaded: LoadedModel, model: nn.Module, folder: Path) -> None:
    from timm.models import save_for_hf

    cfg = loaded.data_config
    save_for_hf(
        model, str(folder), model_config={"label_names": list(loaded.classes)}, safe_serialization=True,
        data_config={"input_size": cfg["input_size"], "mean": cfg["mean"], "std": cfg["std"],
                     "interpolation": cfg["interpolation"], "crop_pct": cfg["crop_pct"]},
    )


def model_card(loaded: LoadedModel, config: RunConfig, data_summary: dict, metrics: dict) -> str:
    classes = data_summary.get("classes", {})
    class_lines = "\n".join(f"| {name} | {count} |" for name, count in classes.items())
    per_class = metrics.get("per_class", {})
    per_class_lines = "\n".join(
        f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
        for name, m in per_class.items()
    )
    if loaded.modality == "image":
        how_to = (
            "```python\nimport timm, torch\nfrom PIL import Image\n"
            "model = timm.create_model('local-dir:PATH/TO/model', pretrained=True).eval()\n"
            "cfg = timm.data.resolve_data_config({}, model=model)\n"
            "transform = timm.data.create_transform(**cfg)\n"
            "probs = model(transform(Image.open('x.png').convert('RGB')).unsqueeze(0)).softmax(-1)\n"
            "labels = model.pretrained_cfg['label_names']\n```"
        )
    else:
        how_to = (
            "```python\nfrom transformers import pipeline\n"
            "classify = pipeline('text-classification', model='PATH/TO/model', top_k=None)\n"
            "classify('your text here')\n```"
        )
    lora_note = ("\nThe LoRA adapter alone is in `adapter/` (load it with `peft.PeftModel.from_pretrained` "
                 "on the base model); the folder itself holds the merged model.\n"
                 if config.strategy == "lora" else "")
    n_val = metrics.get("n_val", 0)
    return f"""---
library_name: {"timm" if loaded.modality == "image" else "transformers"}
tags: [transfer-lab, {loaded.modality}-classification]
---
# {loaded.modality.capitalize()} classifier fine-tuned with Transfer Lab

* **Base model:** {loaded.entry.display_name} (`{loaded.entry.load_name}`, licence {loaded.entry.licence})
* **Strategy:** `{config.strategy}` – {STRATEGY_HELP[config.strategy]}
* **Scratch baseline (random initial weights):** {"yes" if config.random_init else "no"}
* **Training data:** {data_summary.get("n_examples", "?")} examples from `{data_summary.get("source", "")}`,
  {len(classes)} classes; {metrics.get("n_train", "?")} used for training, {n_val} held out for validation.

| class | examples |
|---|---|
{class_lines}

## How well it works (on {n_val} held-out validation examples)

* Accuracy: **{metrics.get("accuracy", 0):.3f}** (always guessing the largest class would score
  {metrics.get("majority_baseline_accuracy", 0):.3f})
* Macro-F1: **{metrics.get("macro_f1", 0):.3f}**
* Best epoch: {metrics.get("best_epoch", "?")}

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class_lines}

With {n_val} validation examples these figures are estimates: a difference of a few points
between two runs may be chance. Check the model on new data from where it will be used.

## Intended use and limits

Built by a domain expert for their own classification task with a small labelled dataset. It knows
only the classes above and will pick one of them for any input, including inputs unlike the
training data. It inherits the biases of its base model and of the training examples. Do not use it
for decisions about people without independent validation.

## How to load it
{how_to}
{lora_note}
The exact training settings are in `run.json` next to this folder (replay:
`python -m tl_ui train --config run.json --out DIR`).
"""


def read_manifest(model_dir: Path) -> Optional[dict]:
    path = Path(model_dir) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
