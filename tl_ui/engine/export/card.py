"""The model card (README.md of the export): what the model is, how well it works and how sure
that is, what it must not be used for, and how to load it."""
from __future__ import annotations

from tl_ui.core.config import STRATEGY_HELP, RunConfig
from tl_ui.engine.models.build import LoadedModel
from tl_ui.engine.export.sentence_export import CARD_SNIPPET as SENTENCE_SNIPPET


def model_card(loaded: LoadedModel, config: RunConfig, data_summary: dict, metrics: dict) -> str:
    """A single-label run's card (a multi-label run's: multilabel_card.py; each task picks its own)."""
    classes = data_summary.get("classes", {})
    class_lines = "\n".join(f"| {name} | {count} |" for name, count in classes.items())
    per_class = metrics.get("per_class", {})
    per_class_lines = "\n".join(
        f"| {name} | {m['precision']:.3f} {_ci(m.get('precision_ci'))} | {m['recall']:.3f} "
        f"{_ci(m.get('recall_ci'))} | {m['f1']:.3f} | {m['support']} |"
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
    elif getattr(loaded, "sentence", None):
        how_to = SENTENCE_SNIPPET
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
    evaluation = metrics.get("evaluation") or {}
    reading = data_summary.get("image_reading") or {}
    if reading.get("dicom"):
        window = config.dicom_window or "header"
        class_lines += (f"\n\nImages were DICOM files read with the **{window}** display window "
                        f"({'each file' + chr(39) + 's own window from its header' if window == 'header' else 'preset'}"
                        f"): apply the same window before predicting (Transfer Lab's `predict` does).")
    trust_lines = _trust_lines(metrics)
    return f"""---
library_name: {"timm" if loaded.modality == "image" else ("sentence-transformers" if getattr(loaded, "sentence", None) else "transformers")}
tags: [transfer-lab, {loaded.modality}-classification]
---
# {loaded.modality.capitalize()} classifier fine-tuned with Transfer Lab

* **Base model:** {loaded.entry.display_name} (`{loaded.entry.load_name}`, licence {loaded.entry.licence})
* **Strategy:** `{config.strategy}` – {STRATEGY_HELP[config.strategy]}
* **Scratch baseline (random initial weights):** {"yes" if config.random_init else "no"}
* **Training data:** {data_summary.get("n_examples", "?")} examples from `{data_summary.get("source", "")}`,
  {len(classes)} classes; {metrics.get("n_train", "?")} used for training, {evaluation.get("n_chosen", "?")} for
  validation (choosing the epoch, the calibration and the prediction-set threshold) and {n_val} held out
  as test examples that took part in nothing else.

| class | examples |
|---|---|
{class_lines}

## How well it works (on {n_val} test examples; 95% intervals in brackets)

{metrics.get("accuracy_sentence", "")}

* Accuracy: **{metrics.get("accuracy", 0):.3f}** {_ci(metrics.get("accuracy_ci"))} (always guessing the largest
  class would score {metrics.get("majority_baseline_accuracy", 0):.3f})
* Macro-F1: **{metrics.get("macro_f1", 0):.3f}** {_ci(metrics.get("macro_f1_ci"))}{_why(metrics.get("macro_f1_sentence"))}
* {_kept_weights(metrics)}
{trust_lines}

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{per_class_lines}

With {n_val} test examples these figures are estimates: a difference of a few points
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


def _ci(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci and len(ci) == 2 else ""


def _why(sentence) -> str:
    """A widened interval's reason (tl_ui.trust.floors), after its figure."""
    return f" — {sentence}" if sentence else ""


def _trust_lines(metrics: dict) -> str:
    from tl_ui.trust.floors import floored
    from tl_ui.trust.wording import cv_floor_sentence

    lines = []
    cv = metrics.get("cross_validation")
    if cv:
        widened = floored(cv, "accuracy_ci") and cv.get("n")
        lines.append(f"* Cross-validated accuracy of a linear probe on these features ({cv['folds']} folds × "
                     f"{cv['repeats']} repeats, all examples): {cv['accuracy']:.3f} {_ci(cv.get('accuracy_ci'))}"
                     + _why(cv_floor_sentence(cv["accuracy"], cv["n"], cv["accuracy_ci"]) if widened else None))
    cal = metrics.get("calibration")
    if cal:
        if abs(float(cal["temperature"]) - 1.0) < 1e-9:
            how = "the probabilities in these files are the model's own (temperature 1)"
        else:
            how = (f"the probabilities in these files are temperature-scaled (T = {cal['temperature']:.2f}, "
                   "folded into the last layer)")
        note = f" {cal['temperature_note']}" if cal.get("temperature_note") else ""
        lines.append(f"* Calibration: {how}.{note} Expected calibration error on the test examples "
                     f"{cal['ece_before']:.3f} {_ci(cal.get('ece_before_ci'))} before, {cal['ece_after']:.3f} "
                     f"{_ci(cal.get('ece_after_ci'))} after (in brackets: what the test examples cannot rule out).")
    conf = metrics.get("conformal") or {}
    if conf.get("coverage") is not None:
        lines.append(f"* Prediction sets at the {conf['level']:.0%} level (split conformal, thresholds in "
                     f"`transfer_lab.json`): the set held the right class for {conf['coverage']:.0%} of the test "
                     f"examples, with {conf['mean_set_size']:.2f} classes on average.")
    elif conf.get("note"):
        lines.append(f"* Prediction sets: {conf['note']}")
    groups = metrics.get("groups")
    if groups and groups.get("max_gap"):
        gap = groups["max_gap"]
        lines.append(f"* Groups by `{groups.get('column')}`: the largest accuracy gap is {gap.get('accuracy', 0):.3f} "
                     f"(between {', '.join(map(str, gap.get('between') or []))}).")
    lines += _operating_point_lines(metrics)
    if metrics.get("pretraining_gain"):
        gain = metrics["pretraining_gain"]
        lines.append(f"* Pretraining gain over the same recipe from random weights: {gain['accuracy']:+.3f} "
                     f"{_ci(gain.get('ci'))}")
    return "\n".join(lines)


def operating_point_line(op: dict) -> str:
    """The saved operating point in one sentence: the threshold, how it was chosen, and its test numbers
    with their intervals (issue 33)."""
    rule = {"sensitivity": "the lowest specificity cost for a validation sensitivity of at least {:.0%}",
            "specificity": "the highest sensitivity for a validation specificity of at least {:.0%}",
            "youden": "the largest sensitivity + specificity on the validation examples (Youden's J)",
            "threshold": "fixed by hand"}[op["rule"]]
    rule = rule.format(op["target"]) if "{" in rule else rule

    def share(name: str) -> str:
        value = op.get(name)
        return "not measurable" if value is None else f"{value:.3f} {_ci(op.get(name + '_ci'))}"

    where = f" on {op['n_chosen']} validation examples" if op.get("chosen_on") == "validation" else ""
    note = f" {op['note']}" if op.get("note") else ""
    return (f"* Operating point for **{op['positive_class']}**: flag an input when its probability of "
            f"{op['positive_class']} is at least **{op['threshold']:.4g}** (chosen{where}: {rule}; saved as "
            f"`operating_point` in `transfer_lab.json`). On the {op.get('n_reported', '?')} test examples: "
            f"sensitivity {share('sensitivity')}, specificity {share('specificity')}, PPV {share('ppv')}, "
            f"NPV {share('npv')} ({op['tp']} found, {op['fn']} missed, {op['fp']} flagged wrongly, "
            f"{op['tn']} cleared).{note}")


def _operating_point_lines(metrics: dict) -> list[str]:
    lines = []
    roc = metrics.get("roc") or {}
    if roc.get("auroc") is not None:
        lines.append(f"* Area under the ROC curve for {roc['positive_class']} against the rest: {roc['auroc']:.3f} "
                     f"{_ci(roc.get('auroc_ci'))}; area under the precision-recall curve {roc['auprc']:.3f} "
                     f"{_ci(roc.get('auprc_ci'))}.")
    if metrics.get("operating_point"):
        lines.append(operating_point_line(metrics["operating_point"]))
    return lines


def _kept_weights(metrics: dict) -> str:
    fit = metrics.get("probe_fit")
    if fit:
        return (f"Last layer: multinomial logistic regression, {fit.get('iterations')} L-BFGS iterations, "
                f"L2 strength {fit.get('l2'):g} (chosen by cross-validation on the training examples)")
    return f"Best epoch: {metrics.get('best_epoch', '?')}"
