"""The offline shelf's real weights answer as they should: EfficientNet recognises real photos, MiniLM ranks a paraphrase above an unrelated sentence (forward passes, so not unit tests)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from tl_ui.core.catalog import get_model, packaged_path
from tl_ui.engine.models.build import load_model
from tl_ui.engine.models.packaged_weights import efficientnet_pytorch_to_timm

os.environ["HF_HUB_OFFLINE"] = "1"
IMAGENET = Path(__file__).parents[1] / "data" / "imagenet"
REPO = Path(__file__).resolve().parents[2]


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
