"""Turn dataset items (image paths or texts) into model inputs, with transforms derived from the model."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from tl_ui.engine.models.fast_path import image_input
from tl_ui.engine.models.build import LoadedModel


def open_image(item: Any, window: Optional[str] = None) -> Image.Image:
    """An RGB PIL image from a path or an image object (grey scans and RGBA PNGs become RGB).

    Paths go through the data package's reader: DICOM (modality LUT, then the `window` preset of
    tl_ui.data.dicom.WINDOW_PRESETS or the file's own window) and 16-bit PNG/TIFF (scaled from their
    value range) arrive as 8-bit pixels like any photo.
    """
    import os

    from tl_ui.data.images import read_image, to_8bit

    if isinstance(item, Image.Image):
        return to_8bit(item).convert("RGB")
    if isinstance(item, (str, os.PathLike)):
        return read_image(item, window=window).convert("RGB")
    with Image.open(item) as image:   # a file object
        return to_8bit(image).convert("RGB")


def image_transform(loaded: LoadedModel, *, augment: bool):
    """timm's own transforms for this model's input size and normalisation.

    Augmentation is light on purpose: a random resized crop keeping most of the image and a little
    colour jitter. No flips: they change the meaning of digits, text and many scans.
    """
    from timm.data import create_transform

    cfg = loaded.data_config
    if augment:
        return create_transform(
            input_size=cfg["input_size"], is_training=True, mean=cfg["mean"], std=cfg["std"],
            interpolation=cfg["interpolation"], scale=(0.7, 1.0), ratio=(0.9, 1.1), hflip=0.0, vflip=0.0,
            color_jitter=0.1, auto_augment=None, re_prob=0.0,
        )
    return create_transform(
        input_size=cfg["input_size"], is_training=False, mean=cfg["mean"], std=cfg["std"],
        interpolation=cfg["interpolation"], crop_pct=cfg["crop_pct"],
    )


class ImageItems(Dataset):
    """Images decoded once and kept in memory (datasets here are small); transform applied per access."""

    def __init__(self, items: Sequence[Any], targets: Optional[Sequence[int]], transform,
                 window: Optional[str] = None):
        self.images = [_bounded(open_image(item, window)) for item in items]
        self.targets = list(targets) if targets is not None else [-1] * len(self.images)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return {"pixel_values": self.transform(self.images[i]), "labels": self.targets[i]}


def _bounded(image: Image.Image, max_side: int = 1024) -> Image.Image:
    # Keep memory bounded for large photos; no model on the shelf looks at more than ~520 px.
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    return image


class TextItems(Dataset):
    """Texts tokenised once; batches are padded to their own longest text (dynamic padding)."""

    def __init__(self, texts: Sequence[str], targets: Optional[Sequence[int]], tokenizer, max_length: int):
        self.encodings = tokenizer(list(texts), truncation=True, max_length=max_length)
        self.targets = list(targets) if targets is not None else [-1] * len(texts)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        item = {k: v[i] for k, v in self.encodings.items()}
        item["labels"] = self.targets[i]
        return item


def make_dataset(loaded: LoadedModel, items, targets=None, *, augment: bool = False, max_length: int = 128,
                 window: Optional[str] = None):
    """`window`: the DICOM display window preset chosen for the dataset (None: each file's own)."""
    if loaded.modality == "image":
        return ImageItems(items, targets, image_transform(loaded, augment=augment), window)
    return TextItems(items, targets, loaded.tokenizer, max_length)


def make_loader(loaded: LoadedModel, dataset: Dataset, batch_size: int, *, shuffle: bool,
                seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    if loaded.modality == "image":
        collate = _collate_images
    else:
        from transformers import DataCollatorWithPadding

        collate = DataCollatorWithPadding(loaded.tokenizer)
    # num_workers=0: on a 2-core machine worker processes compete with torch's own threads.
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)


def _collate_images(batch):
    return {
        "pixel_values": torch.stack([b["pixel_values"] for b in batch]),
        "labels": torch.tensor([b["labels"] for b in batch], dtype=torch.long),
    }


def forward_logits(model, batch: dict) -> torch.Tensor:
    """Logits for a batch, whatever the model family (timm takes a tensor, transformers keywords)."""
    if "pixel_values" in batch:
        return model(image_input(batch["pixel_values"]))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return model(**inputs).logits
