"""The fast path (tl_ui/engine/fast_path.py): channels-last images, native-bf16-only autocast, texts
batched by length. Same numbers within float rounding when on; exactly today's numbers when off."""
from __future__ import annotations

import os

import pytest
import torch

from tl_ui.catalog import get_model
from tl_ui.config import RunConfig
from tl_ui.data import load_dataset, sample_dataset_path
from tl_ui.engine import fast_path
from tl_ui.engine.embedding_cache import feature_key, feature_settings
from tl_ui.engine.features import embed_sets
from tl_ui.engine.inputs import make_dataset, make_loader
from tl_ui.engine.models import load_model
from tl_ui.engine.predict import Predictor

os.environ["HF_HUB_OFFLINE"] = "1"
# Relative to the features' largest magnitude: what float32 rounding in another memory layout or
# another padding length can change (measured differences are ~1e-6 of it).
TOLERANCE = 1e-4
TEXTS = ["ok", "a much longer review that goes on and on about the plot and the actors",
         "fine film", "terrible", "one of the best films of the year, warm and funny and true", "meh"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    dataset = load_dataset(str(sample_dataset_path("image")), tmp_path_factory.mktemp("digits"))
    return [item for item in dataset.items[:12]]


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
def test_fast_features_equal_plain_ones_within_rounding_and_off_is_exactly_plain(monkeypatch, digits, model_id):
    items = digits if model_id == "efficientnet_lite0" else TEXTS
    size = 96 if model_id == "efficientnet_lite0" else None
    loaded_fast, fast = _embed(monkeypatch, "1", model_id, items, size)
    if model_id == "efficientnet_lite0":
        conv = next(m for m in loaded_fast.model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    loaded_plain, plain = _embed(monkeypatch, "0", model_id, items, size)
    assert all(p.is_contiguous() for p in loaded_plain.model.parameters())
    assert fast.shape == plain.shape
    assert (fast - plain).abs().max() <= TOLERANCE * plain.abs().max()
    # off: exactly the numbers of the plain eager float32 path, in the given order
    assert torch.equal(plain, _plain_forward_features(loaded_plain, items))


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
    assert fast_path.describe("image") == {"channels_last": True, "bf16_inference": False,
                                           "length_buckets": False}
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert isinstance(fast_path.inference_autocast(), torch.autocast)   # used only where the CPU has it
    monkeypatch.setenv(fast_path.ENV_SWITCH, "off")
    assert not isinstance(fast_path.inference_autocast(), torch.autocast)

    keys = set()
    for switch in ("1", "0"):
        monkeypatch.setenv(fast_path.ENV_SWITCH, switch)
        loaded = load_model(get_model("efficientnet_lite0"), ["a", "b"], image_size=64)
        keys.add(feature_key(feature_settings(loaded, RunConfig(), None, "cpu")))
    assert len(keys) == 2
