"""Step 3 · Strategy: the ways to adapt the model, what each trains, how long it may take."""
from __future__ import annotations

import gradio as gr

from tl_ui.core.config import (DEFAULT_BUDGET_MINUTES, MIN_BUDGET_MINUTES, PROBE_MAX_ITER, SETFIT_MAX_PAIRS,
                               STRATEGY_CHOICES, STRATEGY_DEFAULTS, STRATEGY_HELP, RunConfig)
from tl_ui.core.limits import RunLimits
from tl_ui.ui.formatting import fmt_count, fmt_duration, fmt_share, user_message
from tl_ui.ui.fields import bounded_number

# One short label per strategy; the plain-words sentence (STRATEGY_HELP) is shown once, in #strategy-info.
STRATEGY_LABELS = {
    "linear_probe": "Linear probe — fastest",
    "partial": "Partial unfreezing — middle ground",
    "full": "Full fine-tuning — slowest",
    "lora": "LoRA adapters — small add-ons",
    "setfit": "SetFit — texts only, few examples",
}


def auto_label(minutes=None) -> str:
    """The 'auto' choice's label, with the budget it will keep to."""
    try:
        minutes = float(minutes) if minutes else DEFAULT_BUDGET_MINUTES
    except (TypeError, ValueError):
        minutes = DEFAULT_BUDGET_MINUTES
    return f"Let Transfer Lab choose (within {minutes:g} minute{'s' if minutes != 1 else ''})"


def strategy_choices(minutes=None) -> list[tuple[str, str]]:
    return [(auto_label(minutes) if s == "auto" else STRATEGY_LABELS[s], s) for s in STRATEGY_CHOICES]


# When to use each, in one line (the selected one is explained in full in #strategy-info).
WHEN_TO_USE = ("Little data or a first try: linear probe · a few hundred examples: partial · "
               "lots of data and time: full · near full quality with few trained weights: LoRA · "
               "a few dozen texts: linear probe or SetFit (they tied in the benchmark) · unsure: let Transfer Lab "
               "choose (it tries them within your time budget and keeps the best on the validation examples)")
DEFAULT_STRATEGY = "linear_probe"
# Why a text strategy is preselected: the benchmark's table for the user's number of examples
# (tl_ui.core.measured.text_default); these lines only when it has not run. Figures only as measured.
TEXT_LORA_REASON = ("LoRA is preselected for texts: it adapts the model itself to your labels, which a "
                    "linear probe cannot; the probe reads MiniLM's mean-pooled sentence embeddings as they are.")
TEXT_LORA_REASON_OTHER = ("LoRA is preselected for texts: it adapts the model itself, which a linear probe "
                          "can only read as it is.")
TEXT_PROBE_HINT = ("For texts the linear probe reads the encoder's own sentence embeddings (mean pooling), "
                   "in seconds; **LoRA** and **SetFit** also adapt the encoder and take minutes.")
COMPARE_SCRATCH_LABEL = ("Also train the same recipe from random weights (shows what pretraining bought you; "
                         "takes twice as long)")
SET_LEVEL_CHOICES = [("80%", 0.8), ("90%", 0.9), ("95%", 0.95)]


def measured_claim() -> str:
    """'Measured: on the sample reviews LoRA scored …', or '' when the benchmark has not run."""
    try:
        from tl_ui.core.measured import text_strategy_claim
    except ImportError:
        return ""
    claim = text_strategy_claim()
    return f"Measured: {claim}." if claim else ""


# Advanced inputs (component keys = RunConfig field names).
ADVANCED_KEYS = ["epochs", "learning_rate", "batch_size", "image_size", "val_fraction", "seed",
                 "random_init", "unfreeze_groups", "lora_rank", "max_examples", "set_level"]
# The operating point (issue 33): single-label data only; the rule as RunConfig reads it (parse_rule's form).
OPERATING_POINT_KEYS = ["positive_class", "operating_point", "prevalence"]
RULE_CHOICES = [("Best balance of sensitivity and specificity (Youden's J)", "youden"),
                ("Sensitivity at least 95%", "sensitivity:0.95"), ("Sensitivity at least 90%", "sensitivity:0.9"),
                ("Specificity at least 95%", "specificity:0.95"), ("Specificity at least 90%", "specificity:0.9"),
                ("A fixed probability of 0.5", "threshold:0.5")]
NO_POSITIVE = "(none: curves for every class)"
# Every input of the form, keyed by its RunConfig field name (RunConfig.from_options reads them).
OPTION_KEYS = [*ADVANCED_KEYS, "compare_scratch", "budget_minutes", *OPERATING_POINT_KEYS]


def build(limits: RunLimits = RunLimits()) -> dict:
    """The Strategy step; each number's maximum is the server's limit for it (`limits`: Settings.run_limits(),
    the same the service checks), so the form cannot offer what a run would be refused for."""
    gr.Markdown(
        "### Step 3 · How to train\n"
        "Choose how much of the pretrained model may change. If unsure, keep the preselected one "
        "(**linear probe** for images; for texts the one the benchmark found best for your number of examples). The box below says what the choice does, how "
        "many of the model's weights it trains and roughly how long it takes on this computer.",
        elem_classes="tl-step-intro",
    )
    choice = gr.Radio(choices=strategy_choices(), value=DEFAULT_STRATEGY,
                      label="Strategy", elem_id="strategy-choice", info=WHEN_TO_USE)
    budget = bounded_number(value=DEFAULT_BUDGET_MINUTES, minimum=MIN_BUDGET_MINUTES, maximum=limits.max_budget_minutes,
                            label="Time budget in minutes (for 'Let Transfer Lab choose')", elem_id="budget-minutes",
                            info="The search, the winner's training and its report end within about this long.")
    info = gr.Markdown(STRATEGY_HELP[DEFAULT_STRATEGY], elem_id="strategy-info", elem_classes="tl-info")
    compare_scratch = gr.Checkbox(value=False, label=COMPARE_SCRATCH_LABEL, elem_id="compare-scratch",
                                  info="Step 5 then shows both accuracies and the gain, each with its interval.")
    defaults = STRATEGY_DEFAULTS[DEFAULT_STRATEGY]
    base = RunConfig()
    with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
        with gr.Row():
            epochs = bounded_number(value=defaults["epochs"], precision=0, minimum=1, maximum=limits.max_epochs,
                                    label="Epochs (passes over the training data)", elem_id="epochs")
            lr = bounded_number(value=defaults["learning_rate"], minimum=0, maximum=1,
                                label="Learning rate (step size)", elem_id="learning-rate")
            batch = bounded_number(value=base.batch_size, precision=0, minimum=1, maximum=limits.max_batch_size,
                                   label="Batch size", elem_id="batch-size")
        with gr.Row():
            image_size = bounded_number(value=0, precision=0, minimum=0, maximum=limits.max_image_size,
                                        label="Image size in pixels (0 = the model's own)", elem_id="image-size")
            val = gr.Slider(0.05, 0.5, value=base.val_fraction, step=0.05,
                            label="Share of examples kept aside to check the model", elem_id="val-fraction")
            seed = gr.Number(value=base.seed, precision=0, label="Random seed (same seed = same result)",
                             elem_id="seed")
        with gr.Row():
            unfreeze = bounded_number(value=base.unfreeze_groups, precision=0, minimum=1, maximum=20,
                                      label="Partial: layer groups to retrain", elem_id="unfreeze-groups")
            rank = bounded_number(value=base.lora_rank, precision=0, minimum=1, maximum=limits.max_lora_rank,
                                  label="LoRA: adapter rank", elem_id="lora-rank")
            max_examples = bounded_number(value=0, precision=0, minimum=0,
                                          label="Use at most this many examples (0 = all)", elem_id="max-examples")
        with gr.Row():
            set_level = gr.Radio(SET_LEVEL_CHOICES, value=base.set_level, elem_id="set-level",
                                 label="Prediction sets: how often the set should hold the right class",
                                 info="Higher: safer sets that name more classes when the model is unsure.")
            random_init = gr.Checkbox(value=False, label="Only the scratch baseline: this recipe from random "
                                      "starting weights, without the pretrained run", elem_id="random-init")
    op = _operating_point_inputs()
    next_btn = gr.Button("Next: train →", variant="primary", elem_id="strategy-next")
    return {"strategy_choice": choice, "strategy_info": info, "epochs": epochs, "learning_rate": lr,
            "batch_size": batch, "image_size": image_size, "val_fraction": val, "seed": seed,
            "random_init": random_init, "unfreeze_groups": unfreeze, "lora_rank": rank,
            "max_examples": max_examples, "set_level": set_level, "compare_scratch": compare_scratch,
            "strategy_next": next_btn, "budget_minutes": budget, **op}


def _operating_point_inputs() -> dict:
    """The condition to find and how its threshold is chosen (on the validation examples; step 5 shows
    the curves and the numbers on the test examples). Shown only for single-label data (`positive_class_update`)."""
    with gr.Accordion("Operating point: from a score to a decision", open=False, elem_id="operating-point-box",
                      visible=False) as box:
        gr.Markdown("Name the condition to find (the positive class) and how the decision threshold is chosen. "
                    "The threshold is chosen on the validation examples and every number at it is measured on the "
                    "test examples; the exported model carries it.")
        with gr.Row():
            positive = gr.Dropdown(choices=[NO_POSITIVE], value=NO_POSITIVE, label="Condition to find (positive class)",
                                   elem_id="positive-class")
            rule = gr.Dropdown(choices=RULE_CHOICES, value="youden", allow_custom_value=True,
                               label="How to choose the threshold", elem_id="operating-point-rule",
                               info="or type e.g. sensitivity:0.98, specificity:0.8, threshold:0.3")
            prevalence = bounded_number(value=0, minimum=0, maximum=0.99, label="Share with the condition where the "
                                        "model will be used (0 = as in the test examples)", elem_id="prevalence")
    return {"operating_point_box": box, "positive_class": positive, "operating_point": rule, "prevalence": prevalence}


def positive_class_update(dataset) -> dict:
    """The operating-point inputs for newly loaded data: shown for one label per example (>= 2 classes)."""
    single = dataset is not None and not getattr(dataset, "multilabel", False) and len(dataset.classes) >= 2
    classes = [str(c) for c in dataset.classes] if single else []
    return {"operating_point_box": gr.update(visible=single),
            "positive_class": gr.update(choices=[NO_POSITIVE, *classes], value=NO_POSITIVE)}


def operating_point_options(options: dict) -> dict:
    """The form's operating-point values as RunConfig options: no positive class -> no rule, no prevalence."""
    if options.get("positive_class") in (None, "", NO_POSITIVE):
        options.update(positive_class=None, operating_point=None, prevalence=None)
    return options


def strategy_info_md(lab, model_id: str, options: dict, state) -> str:
    """One sentence on the strategy, the trainable share and a time estimate (never raises)."""
    strategy = options.get("strategy") or DEFAULT_STRATEGY
    lines = [STRATEGY_HELP.get(strategy, "")]
    if strategy == "auto":
        return auto_info_md(lab, model_id, options, state, lines)
    if state.modality == "text":
        lines.append(text_reason(strategy, model_id, state.n_examples))
    try:
        numbers = lab.plan(model_id, options, state.dataset)
        config = numbers["config"]
        if numbers["trainable"] is None:
            lines.append("The number of weights it trains is counted when the run starts (a Hub model is "
                         "downloaded and checked in the queue, not on this page).")
        else:
            lines.append(
                f"**Trains {fmt_count(numbers['trainable'])} of {fmt_count(numbers['total'])} weights "
                f"({fmt_share(numbers['share'])}).**"
            )
        if numbers["n"] is not None:
            both = " (twice: also from random weights)" if config.compare_scratch else ""
            lines.append(f"**Rough time on this computer:** about {fmt_duration(numbers['seconds'])} for "
                         f"{numbers['n']:,} examples{work_words(config)}{both}.")
        else:
            lines.append("Load data in step 2 to see a time estimate.")
    except Exception as exc:
        lines.append(f"_{user_message(exc, 'estimating the run')}_")
    return "\n\n".join(line for line in lines if line)


def auto_info_md(lab, model_id: str, options: dict, state, lines: list) -> str:
    """The Strategy step's box for 'auto': what it tries and its time limit."""
    tried = ["the linear probe (first: seconds)", "partial unfreezing", "full fine-tuning", "LoRA"]
    if state.modality == "text":
        tried.append("SetFit")
    lines.append(f"**Tries** {', '.join(tried[:-1])} and {tried[-1]}, each with a few settings (learning rate, epochs, "
                 "layer groups, LoRA rank), cheapest first, as long as they fit; a try that falls behind the others "
                 "after an epoch is stopped early. Step 4 shows each try as it ends; step 5 the winner and by how much "
                 "it won.")
    try:
        numbers = lab.plan(model_id, options, state.dataset)
        if numbers["n"] is not None:
            lines.append(f"**Time:** at most about {fmt_duration(numbers['seconds'])} for {numbers['n']:,} examples "
                         "(the time budget).")
        else:
            lines.append("Load data in step 2 first.")
    except Exception as exc:
        lines.append(f"_{user_message(exc, 'estimating the run')}_")
    return "\n\n".join(line for line in lines if line)


def text_reason(strategy: str, model_id: str, n_examples) -> str:
    """One line: why this text strategy is (or is not) the preselected one for this many examples."""
    from tl_ui.core.measured_text import STRATEGY_WORDS, text_default

    measured = text_default(n_examples) if model_id == "minilm_l6" else None
    if measured and measured["strategy"] == strategy:
        return measured["sentence"]
    if measured:
        return (f"{STRATEGY_WORDS.get(measured['strategy'], measured['strategy'])} is preselected for "
                f"{n_examples:,} texts: the benchmark found it best with {measured['size']} examples "
                f"(docs/benchmarks.md).")
    if strategy in ("lora", "linear_probe"):
        reason = (TEXT_PROBE_HINT if strategy == "linear_probe" else
                  TEXT_LORA_REASON if model_id == "minilm_l6" else TEXT_LORA_REASON_OTHER)
        return " ".join(part for part in (reason, measured_claim()) if part)
    return ""


def work_words(config) -> str:
    """What the time estimate is for, after '... for 300 examples': epochs, pairs, or the probe's one pass."""
    if config.strategy == "linear_probe" and config.extra.get("probe_head") != "minibatch":
        # the full-batch head: epochs do not apply (STRATEGY_HELP says so); its solver's iterations do
        return (f": the model reads each once, then the last layer is fitted in at most "
                f"{PROBE_MAX_ITER} solver iterations")
    if config.strategy == "setfit":
        return f" and one pass over at most {setfit_pairs(config):,} pairs of them, then the last layer"
    return f" and {config.resolved_epochs} epochs"


def setfit_pairs(config) -> int:
    return int(config.extra.get("setfit_max_pairs") or SETFIT_MAX_PAIRS)


def defaults_for(strategy: str):
    d = STRATEGY_DEFAULTS.get(strategy, STRATEGY_DEFAULTS[DEFAULT_STRATEGY])
    return d["epochs"], d["learning_rate"]
