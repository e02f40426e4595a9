"""The model shelf: offline entries load real pretrained weights; online ones fail fast offline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tl_ui.core.catalog import ModelUnavailable, get_model, list_models, packaged_path
from tl_ui.engine.models.build import load_model
from tl_ui.engine.models.packaged_weights import efficientnet_pytorch_to_timm

os.environ["HF_HUB_OFFLINE"] = "1"
IMAGENET = Path(__file__).parent / "data" / "imagenet"
REPO = Path(__file__).resolve().parents[1]


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


def test_efficientnet_weights_map_strictly_and_recognise_real_photos():
    entry = get_model("efficientnet_lite0")
    loaded = load_model(entry, [str(i) for i in range(1000)])
    # load_model replaced the 1000-class head; put the ImageNet classifier back to read ImageNet labels.
    state = efficientnet_pytorch_to_timm(torch.load(packaged_path(entry), weights_only=True))
    loaded.model.load_state_dict(state, strict=True)
    from tl_ui.engine.models.inputs import image_transform, open_image

    transform = image_transform(loaded, augment=False)
    photos = sorted(IMAGENET.glob("imagenet_*.jpg"))
    assert len(photos) >= 3
    batch = torch.stack([transform(open_image(p)) for p in photos])
    with torch.no_grad():
        top5 = loaded.model.eval()(batch).topk(5).indices.tolist()
    expected = [int(p.stem.rsplit("_", 1)[1]) for p in photos]
    hits = sum(label in row for label, row in zip(expected, top5))
    assert hits == len(photos), f"pretrained model missed ImageNet classes: {list(zip(expected, top5))}"
    # ... and random weights do not.
    random_model = load_model(entry, [str(i) for i in range(1000)], random_init=True).model.eval()
    with torch.no_grad():
        random_top5 = random_model(batch).topk(5).indices.tolist()
    assert sum(label in row for label, row in zip(expected, random_top5)) < len(photos)


def test_minilm_ranks_a_paraphrase_above_an_unrelated_sentence():
    loaded = load_model(get_model("minilm_l6"), ["a", "b"])
    encoder = loaded.model.base_model.eval()
    sentences = ["The patient has a high fever and a cough.",
                 "The person is running a temperature and coughing.",
                 "Quarterly revenue rose because of strong export sales."]
    encoded = loaded.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1)
    embeddings = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similar = float(embeddings[0] @ embeddings[1])
    unrelated = float(embeddings[0] @ embeddings[2])
    assert similar > unrelated + 0.3, (similar, unrelated)


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
