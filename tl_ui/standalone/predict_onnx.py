"""Predict with this folder's ONNX model: `python predict_onnx.py INPUT` (an image file, or a text) prints, as its
last line, {"probabilities": {class: p}}. `--int8` uses model.int8.onnx. Needs numpy and onnxruntime, and Pillow
(images) or tokenizers (texts); preprocess.json (written beside the model) says how inputs are prepared."""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
CONFIG = json.loads((HERE / "preprocess.json").read_text(encoding="utf-8"))


def image_pixels(paths):
    """float32 NCHW: resize (shorter side; bicubic as timm), centre crop, scale to [0, 1], normalise."""
    from PIL import Image

    _, height, width = CONFIG["input_size"]
    resample = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST}.get(CONFIG["interpolation"], Image.BICUBIC)
    rows = []
    for path in paths:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        if CONFIG["crop_mode"] == "squash":
            scale = [int(s / CONFIG["crop_pct"]) for s in (height, width)]
            image = image.resize((scale[1], scale[0]), resample)
        else:   # "center": the shorter side to resize_to, aspect ratio kept (as torchvision's Resize)
            w, h = image.size
            short, long = (w, h) if w <= h else (h, w)
            new_short, new_long = CONFIG["resize_to"], int(CONFIG["resize_to"] * long / short)
            image = image.resize((new_short, new_long) if w <= h else (new_long, new_short), resample)
        w, h = image.size
        top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
        image = image.crop((left, top, left + width, top + height))
        array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        array = (array - np.asarray(CONFIG["mean"], np.float32)) / np.asarray(CONFIG["std"], np.float32)
        rows.append(array.transpose(2, 0, 1))
    return np.stack(rows).astype(np.float32)


def text_inputs(texts):
    """input_ids and attention_mask (int64) from tokenizer.json, truncated to the run's max_length, padded."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(HERE / "tokenizer.json"))
    tokenizer.enable_truncation(CONFIG["max_length"])
    tokenizer.enable_padding(pad_id=CONFIG["pad_id"], pad_token=CONFIG["pad_token"])
    encoded = tokenizer.encode_batch(list(texts))
    return {"input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64)}


def session(model_file="model.onnx"):
    return ort.InferenceSession(str(HERE / model_file), providers=["CPUExecutionProvider"])


def probabilities(inputs, model=None):
    """One row of probabilities (CONFIG["classes"] order) per input: image paths or texts."""
    feeds = {"pixels": image_pixels(inputs)} if CONFIG["modality"] == "image" else text_inputs(inputs)
    return (model or session()).run(["probabilities"], feeds)[0]


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--int8"]
    item = args[0] if CONFIG["modality"] == "image" else " ".join(args)
    row = probabilities([item], session("model.int8.onnx" if "--int8" in sys.argv else "model.onnx"))[0]
    print(json.dumps({"probabilities": {c: float(p) for c, p in zip(CONFIG["classes"], row)}}))
