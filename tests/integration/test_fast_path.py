"""The fast path (tl_ui/engine/models/fast_path.py): channels-last images, native-bf16-only autocast (inference
and the training forward), texts batched by length. Close to today's numbers when on (within float32
rounding without bf16, within the stated bf16 tolerance with it); exactly today's numbers when off."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from tl_ui.core.catalog import get_model
from tl_ui.core.config import RunConfig
from tl_ui.engine.models import fast_path
from tl_ui.engine.probe.embedding_cache import feature_key, feature_settings
from tl_ui.engine.probe.features import embed_sets
from tl_ui.engine.models.inputs import make_dataset, make_loader
from tl_ui.engine.models.build import load_model
from tl_ui.engine.inference.predict import Predictor

os.environ["HF_HUB_OFFLINE"] = "1"
# Without bf16, relative to the features' largest magnitude: what float32 rounding in another memory
# layout or another padding length can change (measured differences are ~1e-6 of it).
TOLERANCE = 1e-4
# With bf16 (8-bit mantissa, rounded in every layer), each example's feature vector, relative L2 error
# ||fast - fp32|| / ||fp32||. Measured on an AVX512-BF16 CPU: EfficientNet-Lite0 at 96 px up to 0.09
# (single elements up to 0.12 of the largest magnitude), MiniLM-L6 0.006.
BF16_TOLERANCE = {"efficientnet_lite0": 0.15, "minilm_l6": 0.02}
NATIVE_BF16 = fast_path.cpu_has_native_bf16()
TEXTS = ["ok", "a much longer review that goes on and on about the plot and the actors",
         "fine film", "terrible", "one of the best films of the year, warm and funny and true", "meh"]


@pytest.fixture(scope="module")
def digit_items(digits):
    return [item for item in digits.items[:12]]


def _embed(monkeypatch, switch: str, model_id: str, items, size=None):
    monkeypatch.setenv(fast_path.ENV_SWITCH, switch)
    loaded = load_model(get_model(model_id), ["a", "b"], image_size=size)
    (features,) = embed_sets(loaded, [items], batch_size=4, device=torch.device("cpu"), max_length=64,
                             window=None, on_progress=lambda *_: None)
    return loaded, features


def _plain_forward_features(loaded, items, batch_size=4):
    """Today's path written out: the given order, contiguous layout, float32, no autocast."""
    head = loaded.head_modules()[-1]
    captured = []
    hook = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach().float()))
    loader = make_loader(loaded, make_dataset(loaded, items, None, max_length=64), batch_size, shuffle=False)
    with torch.no_grad():
        for batch in loader:
            if "pixel_values" in batch:
                loaded.model.eval()(batch["pixel_values"])
            else:
                loaded.model.eval()(**{k: v for k, v in batch.items() if k != "labels"})
    hook.remove()
    return torch.cat(captured)


@pytest.mark.parametrize("model_id", ["efficientnet_lite0", "minilm_l6"])
def test_fast_features_equal_plain_ones_within_rounding_and_off_is_exactly_plain(monkeypatch, digit_items, model_id):
    items = digit_items if model_id == "efficientnet_lite0" else TEXTS
    size = 96 if model_id == "efficientnet_lite0" else None
    loaded_fast, fast = _embed(monkeypatch, "1", model_id, items, size)
    if model_id == "efficientnet_lite0":
        conv = next(m for m in loaded_fast.model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    loaded_plain, plain = _embed(monkeypatch, "0", model_id, items, size)
    assert all(p.is_contiguous() for p in loaded_plain.model.parameters())
    assert fast.shape == plain.shape
    if NATIVE_BF16:   # bf16 really runs: each example's features within the stated bf16 tolerance
        relative = (fast - plain).norm(dim=1) / plain.norm(dim=1)
        assert relative.max() <= BF16_TOLERANCE[model_id], relative
    else:
        assert (fast - plain).abs().max() <= TOLERANCE * plain.abs().max()
    # off: exactly the numbers of the plain eager float32 path, in the given order
    assert torch.equal(plain, _plain_forward_features(loaded_plain, items))


def test_a_probe_fitted_on_fp32_features_labels_fast_features_alike(monkeypatch, digits):
    """What the user sees: a linear probe's answers on bf16 features agree with its answers on fp32 ones."""
    from sklearn.linear_model import LogisticRegression

    targets = digits.targets
    chosen = [int(i) for c in range(10) for i in np.flatnonzero(targets == c)[:4]]
    items = [digits.items[i] for i in chosen]
    _, fast = _embed(monkeypatch, "1", "efficientnet_lite0", items, 96)
    _, plain = _embed(monkeypatch, "0", "efficientnet_lite0", items, 96)
    fit, score = chosen[0::2], list(range(1, len(chosen), 2))   # 2 per class to fit, 2 to label
    probe = LogisticRegression(max_iter=3000).fit(plain[0::2].numpy(), targets[fit])
    agree = (probe.predict(fast[score].numpy()) == probe.predict(plain[score].numpy())).mean()
    assert agree >= 0.85   # measured 0.95 (19 of 20) with bf16; 1.0 without


def test_bf16_training_forward_gives_the_fp32_loss_and_keeps_fp32_weights(monkeypatch, digits):
    from tl_ui.engine.models.inputs import forward_logits
    from tl_ui.engine.training.strategies import plan

    monkeypatch.setenv(fast_path.ENV_SWITCH, "1")
    # bf16 in this strategy whatever the table decided: the loss it would give is what is checked
    monkeypatch.setattr(fast_path, "BF16_TRAINING", {"image": frozenset({"full"})})
    loaded = load_model(get_model("efficientnet_lite0"), digits.classes, image_size=64)
    model = plan(loaded, RunConfig(strategy="full")).model.train()
    batch = next(iter(make_loader(loaded, make_dataset(loaded, digits.items[::30][:8],
                                                       digits.targets[::30][:8]), 8, shuffle=False)))
    model.eval()   # no batch-statistics update between the two forwards: the same weights both times
    losses = {}
    for name, context in (("fp32", torch.autocast("cpu", enabled=False)),
                          ("fast", fast_path.training_autocast("image", "full"))):
        with context:
            logits = forward_logits(model, batch)
        losses[name] = torch.nn.functional.cross_entropy(logits.float(), batch["labels"])
        losses[name].backward()
        assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)
        model.zero_grad(set_to_none=True)
    assert fast_path.bf16_training("image", "full") == NATIVE_BF16
    assert all(p.dtype == torch.float32 for p in model.parameters())   # master weights stay float32
    assert abs(losses["fast"].item() - losses["fp32"].item()) <= 0.02 * losses["fp32"].item(), losses
    if not NATIVE_BF16:
        assert losses["fast"].item() == losses["fp32"].item()


@pytest.mark.parametrize("strategy", ["full", "partial"])
def test_float32_islands_run_in_float32_inside_bf16_and_leave_the_model_unchanged(monkeypatch, digits,
                                                                                  strategy):
    """Inside a bf16 training forward the islands (full: depthwise convolutions; partial: the whole
    trainable top) compute in float32 and everything else in bf16; the loss stays within 2% of fp32 and
    the model is the same module afterwards (no forward left behind, same weights and keys)."""
    from torch import nn

    from tl_ui.engine.models.inputs import forward_logits
    from tl_ui.engine.training.strategies import plan

    monkeypatch.setenv(fast_path.ENV_SWITCH, "1")
    monkeypatch.setattr(fast_path, "BF16_TRAINING", {"image": frozenset({strategy})})
    # bf16 autocast also runs (emulated, slowly) on CPUs without it: the islands are checked everywhere
    monkeypatch.setattr(fast_path, "cpu_has_native_bf16", lambda: True)
    loaded = load_model(get_model("efficientnet_lite0"), digits.classes, image_size=32)
    model = plan(loaded, RunConfig(strategy=strategy, unfreeze_groups=2)).model.eval()
    islands = fast_path.float32_islands(model, "image", strategy)
    names = {id(m): n for n, m in model.named_modules()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if strategy == "partial":   # exactly the trainable parameters, nothing frozen
        assert {f"{names[id(m)]}.{p}" for m in islands for p, _ in m.named_parameters()} == trainable
    else:
        assert islands and all(m.groups == m.in_channels > 1 for m in islands)
    inside = {id(c) for m in islands for c in m.modules()}
    dtypes = {}
    hooks = [m.register_forward_hook(lambda mod, _args, out: dtypes.__setitem__(id(mod), out.dtype))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = next(iter(make_loader(loaded, make_dataset(loaded, digits.items[::30][:8],
                                                       digits.targets[::30][:8]), 8, shuffle=False)))
    with fast_path.training_autocast("image", strategy, islands=islands):
        fast = torch.nn.functional.cross_entropy(forward_logits(model, batch).float(), batch["labels"])
    fast.backward()
    for hook in hooks:
        hook.remove()
    assert dtypes and all(d == (torch.float32 if i in inside else torch.bfloat16) for i, d in dtypes.items())
    assert any(d == torch.bfloat16 for d in dtypes.values())   # the rest really ran in bf16
    assert not any("forward" in vars(m) for m in model.modules())
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], v) for k, v in before.items())
    plain = torch.nn.functional.cross_entropy(forward_logits(model, batch).float(), batch["labels"])
    assert abs(fast.item() - plain.item()) <= 0.02 * plain.item(), (fast.item(), plain.item())


@pytest.mark.slow   # two real runs (~20 s on a quiet 2-core machine)
def test_the_training_loop_runs_its_forward_under_bf16_only_where_the_table_says(monkeypatch, digits,
                                                                                tmp_path):
    """A real (tiny) run: the training forward sees autocast on a native-bf16 CPU, not with the switch
    off; validation, predictions for the report and the export stay float32."""
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run
    from tl_ui.engine.training import loop as train_module

    seen = []
    real = train_module.training_autocast

    def spy(modality, strategy, device_type="cpu", islands=()):
        seen.append((modality, strategy, fast_path.bf16_training(modality, strategy, device_type)))
        return real(modality, strategy, device_type, islands)

    monkeypatch.setattr(train_module, "training_autocast", spy)
    subset = stratified_subset(digits, 30, 0)
    for switch in ("1", "0"):
        monkeypatch.setenv(fast_path.ENV_SWITCH, switch)
        seen.clear()
        result = train_run(RunConfig(model_id="efficientnet_lite0", strategy="full", epochs=1, image_size=32,
                                     batch_size=8), tmp_path / switch, dataset=subset)
        assert result.status == "finished", result.message
        expected = NATIVE_BF16 and switch == "1" and "full" in fast_path.BF16_TRAINING["image"]
        assert seen and all(s == ("image", "full", expected) for s in seen)
    from safetensors.torch import load_file

    weights = load_file(next((tmp_path / "1").rglob("*.safetensors")))
    assert all(t.dtype == torch.float32 for t in weights.values() if t.is_floating_point())


def test_text_predictions_come_back_in_the_callers_order(monkeypatch):
    monkeypatch.setenv(fast_path.ENV_SWITCH, "1")
    loaded = load_model(get_model("minilm_l6"), ["neg", "pos"])
    predictor = Predictor(loaded.model, ["neg", "pos"], "text", tokenizer=loaded.tokenizer)
    together = predictor.predict_proba(TEXTS, batch_size=2)
    one_by_one = torch.cat([predictor.predict_proba([t]) for t in TEXTS])
    assert torch.allclose(together, one_by_one, atol=1e-5)


def test_cpus_without_native_bf16_fall_back_silently_and_the_switch_is_in_the_cache_key(monkeypatch):
    def absent():
        return False

    def broken():
        raise RuntimeError("unknown CPU")

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", absent, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken, raising=False)
    monkeypatch.setenv(fast_path.ENV_SWITCH, "1")
    assert not fast_path.cpu_has_native_bf16()
    assert not isinstance(fast_path.inference_autocast(), torch.autocast)
    assert not isinstance(fast_path.training_autocast("image", "full"), torch.autocast)
    assert fast_path.describe("image") == {"channels_last": True, "bf16_inference": False,
                                           "length_buckets": False}
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(fast_path, "BF16_TRAINING", {"image": frozenset({"full"})})
    assert isinstance(fast_path.inference_autocast(), torch.autocast)   # used only where the CPU has it
    assert isinstance(fast_path.training_autocast("image", "full"), torch.autocast)
    assert not isinstance(fast_path.training_autocast("image", "linear_probe"), torch.autocast)
    monkeypatch.setenv(fast_path.ENV_SWITCH, "off")
    assert not isinstance(fast_path.inference_autocast(), torch.autocast)
    assert not isinstance(fast_path.training_autocast("image", "full"), torch.autocast)

    keys = set()
    for switch in ("1", "0"):
        monkeypatch.setenv(fast_path.ENV_SWITCH, switch)
        loaded = load_model(get_model("efficientnet_lite0"), ["a", "b"], image_size=64)
        keys.add(feature_key(feature_settings(loaded, RunConfig(), None, "cpu")))
    assert len(keys) == 2
