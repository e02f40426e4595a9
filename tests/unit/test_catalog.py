"""The model shelf: offline entries load real pretrained weights; online ones fail fast offline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tl_ui.core.catalog import ModelUnavailable, get_model, list_models
from tl_ui.engine.models.build import load_model

os.environ["HF_HUB_OFFLINE"] = "1"
IMAGENET = Path(__file__).parents[1] / "data" / "imagenet"
REPO = Path(__file__).resolve().parents[2]


def test_models_cli_lists_offline_image_and_text_models():
    out = subprocess.run([sys.executable, "-m", "tl_ui", "models", "--json"], capture_output=True, text=True,
                         cwd=REPO, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    models = json.loads(out.stdout)
    for m in models:
        assert {"id", "modality", "offline", "source"} <= m.keys()
    offline = {(m["id"], m["modality"]) for m in models if m["offline"]}
    assert ("efficientnet_lite0", "image") in offline
    assert ("minilm_l6", "text") in offline
    assert any(not m["offline"] for m in models), "curated online entries are listed too"


def test_free_text_hub_id_fails_fast_offline_with_a_plain_message():
    entry = get_model("someone/some-bert-model")
    assert entry.modality == "text" and entry.source == "hub"
    started = time.time()
    with pytest.raises(ModelUnavailable) as info:
        load_model(entry, ["a", "b"])
    assert time.time() - started < 10
    message = str(info.value)
    assert "network" in message or "connection" in message
    assert "minilm_l6" in message  # it names the offline models to use instead
    assert "Traceback" not in message


def test_curated_online_image_model_fails_fast_offline():
    with pytest.raises(ModelUnavailable, match="efficientnet_lite0"):
        load_model(get_model("resnet18"), ["a", "b"])


def test_unknown_id_is_refused_with_the_offline_choices():
    with pytest.raises(ModelUnavailable, match="efficientnet_lite0"):
        get_model("not a model id")


def test_shelf_filters_by_modality():
    assert {e.modality for e in list_models("image")} == {"image"}
    assert all(e.offline for e in list_models(offline_only=True))
