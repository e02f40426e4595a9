"""Limits on everything a user can send: the same for page, API and CLI, each refusal naming
the limit and the setting that raises it."""
from __future__ import annotations

from pathlib import Path

import pytest

from tl_ui.core.config import RunConfig

REPO = Path(__file__).resolve().parents[2]


def test_run_limits_name_the_setting():
    from tl_ui.core.config import ConfigError
    from tl_ui.core.settings import Settings

    limits = Settings(max_batch_size=64, max_epochs=50).run_limits()
    limits.check(RunConfig.from_options({"batch_size": 64}))
    with pytest.raises(ConfigError, match="batch size 512.*limit of 64.*TL_MAX_BATCH_SIZE"):
        limits.check(RunConfig.from_options({"batch_size": 512}))
    with pytest.raises(ConfigError, match="epochs 1000.*TL_MAX_EPOCHS"):
        limits.check(RunConfig.from_options({"epochs": 1000}))
    with pytest.raises(ConfigError, match="LoRA rank.*TL_MAX_LORA_RANK"):
        limits.check(RunConfig.from_options({"lora_rank": 4096}))


def test_over_limit_refused_from_the_page_service(tmp_path):
    from tl_ui.service.errors import UserError
    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings

    lab = Lab(Settings(runs_dir=tmp_path / "runs", max_image_size=256))
    try:
        owner = Owner("user", "limits")
        sample = lab.load_sample(owner, "image")
        with pytest.raises(UserError, match="image size 1024.*TL_MAX_IMAGE_SIZE"):
            lab.start_run(owner, sample.dataset, sample.data_path, "efficientnet_lite0", {"image_size": 1024})
        assert lab.list_runs(owner) == []   # nothing was queued or written
    finally:
        lab.close()


def test_too_many_classes_and_too_many_pixels(tmp_path):
    from tl_ui.data import DataError, Limits, load_dataset

    table = tmp_path / "labels.csv"
    table.write_text("text,label\n" + "".join(f"note number {i},label{i // 2}\n" for i in range(60)))
    with pytest.raises(DataError, match="30 different labels.*at most 20.*TL_MAX_CLASSES"):
        load_dataset(table, tmp_path / "w", limits=Limits(max_classes=20))
    from tl_ui.data import sample_dataset_path

    with pytest.raises(DataError, match="million pixels.*TL_MAX_DATASET_MEGAPIXELS"):
        load_dataset(sample_dataset_path("image"), tmp_path / "w2", limits=Limits(max_dataset_pixels=100_000))


def test_a_hub_model_over_the_size_limit_is_refused_before_download():
    from tl_ui.core.catalog import get_model
    from tl_ui.core.catalog import ModelUnavailable
    from tl_ui.engine.models.build import load_model

    with pytest.raises(ModelUnavailable, match="12 million weights.*TL_MAX_MODEL_PARAMS"):
        # resnet18's architecture is known to timm: counted on the meta device, nothing downloaded
        load_model(get_model("resnet18"), ["a", "b"], random_init=True, max_params_m=5)
