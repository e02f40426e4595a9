"""What a run will cost before it starts: trainable share and a rough time estimate for the UI."""
from __future__ import annotations

from typing import Optional

from tl_ui.core.catalog import get_model
from tl_ui.core.config import SETFIT_CHECKS, SETFIT_MAX_PAIRS, SETFIT_PAIRS_PER_EXAMPLE, RunConfig
from tl_ui.engine.models import fast_path

# Measured on the lab's 2-core CPU machines (`python bench/run.py --only claims`, docs/benchmarks.md
# section 8): examples per second at the model's own input size; texts are the sample reviews'
# length (batches are padded to their longest text, not to 128 tokens).
_INFER_PER_S = {"image": 32.0, "text": 90.0}
_TRAIN_PER_S = {"image": 15.0, "text": 28.0}
# Training work per example relative to full fine-tuning, as measured: partial stops
# back-propagation early; LoRA is cheap on the transformer but costs more than full training on the
# convolutional image model (its wrapped layers add work to every forward and backward pass).
_BACKWARD_SHARE = {"image": {"partial": 0.5, "full": 1.0, "lora": 1.4},
                   "text": {"partial": 0.45, "full": 1.0, "lora": 0.5}}
# The rates above were measured on the plain float32 path. With the fast path on
# (tl_ui/engine/models/fast_path.py), forward passes and training steps run this much faster, measured side by
# side (`python -m bench.sections.fast`, docs/benchmarks.md "Fast path"), kept a little below the
# measured medians (an estimate that is a little long is kinder). Two machines: without native bf16
# only channels-last and length buckets count (AVX2 EPYC); with it (AVX512-BF16 EPYC, no AMX) bf16
# autocast also runs in forward passes and, where fast_path.BF16_TRAINING says so, in training.
_FAST_PATH_SPEEDUP = {
    False: {"image": {"infer": 1.4, "train": 1.3},    # measured 1.53; full 1.60, LoRA 1.32
            "text": {"infer": 1.2, "train": 1.0}},    # measured 1.23 (length buckets)
    # image training with fast_path.float32_islands: measured 2.29, 2.02, 1.61 (quiet, full profile)
    True: {"image": {"infer": 2.8, "full": 2.0, "partial": 1.6, "lora": 1.5},  # 3.29; 2.29, 2.02, 1.61
           "text": {"infer": 2.0, "full": 1.3, "lora": 1.1, "partial": 1.1}},  # 2.38; 1.47, 1.19
}

# The linear probe's seconds besides one forward pass per example (the full-batch head, issue 14): starting
# the worker and importing torch, loading the model, the head's fit (L-BFGS, its strength chosen by
# cross-validation inside the training examples: 0.1-0.4 s at 240-300 examples, from the runs' events),
# calibration, the report and the export. From the claims section (issue 32, item 4): with the former
# estimate (fixed 12 s + epochs x 0.05 s) measured/estimate was 0.46 for both probes on a 2-core AMX machine,
# i.e. ~7.7 s for 240 digits and ~7.1 s for 300 reviews, of which one forward pass per example takes
# 2.7 s and 1.7 s; kept a little above the rest (5.0 s and 5.5 s: a little long is kinder). Checked again on
# a shared machine, one torch thread on the one free core (bench/sections/app_run.run with num_threads=1,
# the other core busy): 7.3-7.6 s for the digits (estimate 8.2 s) and 6.1-6.2 s for the reviews (7.7 s).
PROBE_FIXED_S = {"image": 5.5, "text": 6.0}


def fast_path_factors(modality: str, strategy: str) -> tuple[float, float]:
    """(forward, training step) speed-ups of the path the worker will really run, 1.0 with it off.
    Torch-free: the web process reads the CPU's flags, as the worker's torch probes do."""
    if not fast_path.enabled():
        return 1.0, 1.0
    bf16 = fast_path.cpu_flags_native_bf16()
    table = _FAST_PATH_SPEEDUP[bf16][modality]
    if bf16 and strategy in fast_path.BF16_TRAINING.get(modality, ()):   # = fast_path.bf16_training in the worker
        return table["infer"], table[strategy]
    return table["infer"], _FAST_PATH_SPEEDUP[False][modality]["train"]   # training forward in fp32


def describe_strategy(model_id: str, strategy: str, num_classes: int, config: Optional[RunConfig] = None) -> dict:
    """{"trainable", "total", "share"} parameter counts for this strategy on this model: from the offline
    shelf's shipped facts (no torch), else counted here on the meta device (imports torch: the web
    process asks tl_ui.service.shelf_facts instead, which counts such a model in a worker)."""
    from tl_ui.engine.planning.shelf_facts import counts_from_facts, model_facts, shipped_facts

    config = config or RunConfig(model_id=model_id, strategy=strategy)
    entry = get_model(model_id)
    facts = shipped_facts().get(entry.id) if entry.source == "packaged" else None
    if facts is None or facts.get("load_name") != entry.load_name:
        facts = model_facts(entry)
    return counts_from_facts(facts, strategy, int(num_classes), int(config.unfreeze_groups), int(config.lora_rank))


def estimate_seconds(config: RunConfig, n_examples: int) -> float:
    """A rough wall-time estimate on this kind of machine (within a factor of ~2). An `auto` run takes its
    budget: the search stops there (tl_ui/engine/training/search.py)."""
    if config.strategy == "auto":
        return config.budget_seconds
    entry = get_model(config.model_id)
    modality = entry.modality
    scale = 1.0
    if modality == "image":
        size = config.image_size or entry.input_size
        scale = (size / 224) ** 2 * max(entry.params_m / 4.7, 1.0) ** 0.5
    else:
        scale = max(entry.params_m / 22.7, 1.0)
    n_val = n_examples * config.val_fraction
    n_train = n_examples - n_val
    infer = _INFER_PER_S[modality] / scale
    train = _TRAIN_PER_S[modality] / scale
    infer_factor, train_factor = fast_path_factors(modality, config.strategy)   # the path that will run
    infer, train = infer * infer_factor, train * train_factor
    epochs = config.resolved_epochs
    # Fixed costs of every run, measured on the lab machines: starting the worker process and
    # importing torch (~6 s), loading the model (~3 s), then calibration, intervals, the probe's
    # cross-validation (~3 s at 300 examples), predicting the test examples and writing the export.
    fixed = 6.0 + 3.0 + 3.0 + n_val / infer
    if config.strategy == "linear_probe":
        if config.extra.get("probe_head") == "minibatch":   # the benchmark's comparison head only
            return fixed + n_examples / infer + epochs * 0.05
        # The full-batch head (the app's): one forward pass per example, then PROBE_FIXED_S: the worker,
        # the model, the head's fit with its choice of strength, the report and the export. No epochs.
        return PROBE_FIXED_S[modality] + n_examples / infer
    if config.strategy == "setfit":
        # both texts of each pair forward and backward through the whole encoder, 8 checks on the
        # validation examples, then the probe's embeddings of every example
        pairs = min(int(config.extra.get("setfit_max_pairs") or SETFIT_MAX_PAIRS), 2 * SETFIT_PAIRS_PER_EXAMPLE * n_train)
        return fixed + 2 * pairs / train + SETFIT_CHECKS * n_val / 2 / infer + n_examples / infer
    per_epoch = n_train / (train / _BACKWARD_SHARE[modality][config.strategy]) + n_val / infer
    return fixed + epochs * per_epoch
