"""Each strategy trains exactly the parameters it promises, on the real shelf models."""
from __future__ import annotations

import os

import pytest
import torch

from tl_ui.core.catalog import get_model
from tl_ui.core.config import RunConfig
from tl_ui.engine.models.build import load_model
from tl_ui.engine.training.strategies import plan, trainable_parameter_names

os.environ["HF_HUB_OFFLINE"] = "1"
CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def image_loaded_factory():
    return lambda: load_model(get_model("efficientnet_lite0"), CLASSES, image_size=64)


@pytest.fixture(scope="module")
def text_loaded_factory():
    return lambda: load_model(get_model("minilm_l6"), CLASSES)


def test_linear_probe_trains_only_the_head(image_loaded_factory, text_loaded_factory):
    image = plan(image_loaded_factory(), RunConfig(strategy="linear_probe"))
    assert trainable_parameter_names(image.model) == ["classifier.weight", "classifier.bias"]
    assert image.trainable_params == 1280 * 3 + 3
    text = plan(text_loaded_factory(), RunConfig(model_id="minilm_l6", strategy="linear_probe"))
    assert trainable_parameter_names(text.model) == ["classifier.weight", "classifier.bias"]
    assert text.trainable_params == 384 * 3 + 3


def test_partial_unfreezes_the_top_groups_only(image_loaded_factory, text_loaded_factory):
    image = plan(image_loaded_factory(), RunConfig(strategy="partial", unfreeze_groups=2))
    names = trainable_parameter_names(image.model)
    assert names[-2:] == ["classifier.weight", "classifier.bias"]
    assert {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("blocks") else "") for n in names} == \
        {"blocks.5", "blocks.6", "conv_head", "bn2", "classifier"}
    assert not any(n.startswith(("conv_stem", "bn1", "blocks.0", "blocks.4")) for n in names)
    assert image.trainable_params == sum(p.numel() for n, p in image.model.named_parameters() if n in names)

    text = plan(text_loaded_factory(), RunConfig(model_id="minilm_l6", strategy="partial", unfreeze_groups=2))
    names = trainable_parameter_names(text.model)
    assert all(n.startswith(("bert.encoder.layer.5.", "bert.pooler.", "classifier.")) for n in names)
    assert any(n.startswith("bert.encoder.layer.5.") for n in names)
    assert len(names) == 16 + 2 + 2


def test_partial_keeps_batchnorm_statistics_of_frozen_layers(image_loaded_factory):
    train_plan = plan(image_loaded_factory(), RunConfig(strategy="partial", unfreeze_groups=2))
    model = train_plan.model
    frozen_bn, trained_bn = model.blocks[0][0].bn1, model.blocks[6][0].bn1
    before = frozen_bn.running_mean.clone(), trained_bn.running_mean.clone()
    train_plan.set_train_mode()
    model(torch.randn(4, 3, 64, 64))
    assert torch.equal(frozen_bn.running_mean, before[0]), "frozen BatchNorm statistics moved"
    assert not torch.equal(trained_bn.running_mean, before[1]), "trainable BatchNorm should update"


def test_full_trains_everything_with_smaller_rates_for_earlier_groups(image_loaded_factory):
    loaded = image_loaded_factory()
    train_plan = plan(loaded, RunConfig(strategy="full", learning_rate=1e-3, lr_decay=0.5))
    assert train_plan.trainable_params == train_plan.total_params
    rates = [g["lr"] for g in train_plan.param_groups]
    assert train_plan.param_groups[0]["name"] == "head" and rates[0] == 1e-3
    assert rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(1e-3 * 0.5 ** (len(rates) - 1))
    # the stem (first group) is in the last, smallest-rate optimizer group
    assert any(p is loaded.model.conv_stem.weight for p in train_plan.param_groups[-1]["params"])
    in_groups = sum(p.numel() for g in train_plan.param_groups for p in g["params"])
    assert in_groups == train_plan.total_params
    # BatchNorm weights train, but their running statistics stay as pretrained
    norms = [m for m in loaded.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(any(m is f for f in train_plan.frozen_norm_modules) for m in norms)


def test_lora_trains_adapters_and_the_head(image_loaded_factory, text_loaded_factory):
    text = plan(text_loaded_factory(), RunConfig(model_id="minilm_l6", strategy="lora", lora_rank=8))
    names = trainable_parameter_names(text.model)
    assert all("lora_" in n or "modules_to_save" in n for n in names)
    assert sum("lora_A" in n for n in names) == 12  # query + value in each of the 6 layers
    # adapters + BERT's pooler (trained fully: the head reads only its output) + the new head
    assert text.trainable_params == 6 * 2 * (384 * 8 * 2) + (384 * 384 + 384) + (384 * 3 + 3)
    assert {n.split(".modules_to_save")[0] for n in names if "modules_to_save" in n} == \
        {"base_model.model.bert.pooler", "base_model.model.classifier"}

    image = plan(image_loaded_factory(), RunConfig(strategy="lora", lora_rank=4))
    names = trainable_parameter_names(image.model)
    assert any("conv_head.lora_A" in n for n in names)
    assert any("modules_to_save" in n and "classifier" in n for n in names)
    assert all("lora_" in n or "modules_to_save" in n for n in names)
    assert 0 < image.trainable_share < 0.1
