"""The processor's fast path: channels-last layout for convolutional models, bf16 autocast where the
CPU computes bf16 natively, and texts batched by length.

`TL_FAST_PATH=0` (or the server's `--fast-path false`) turns all of it off and restores the plain
eager float32 path exactly. bf16 runs only on a CPU that reports AVX512-BF16 or AMX (elsewhere PyTorch
emulates it, measured ~80x slower on an AVX2 EPYC); there it runs in:
* embeddings of the examples a probe trains on, and the model advisor's (`inference_autocast`). Never
  where a user sees the number: the examples that choose (epoch, temperature, set thresholds) and
  report are embedded in full precision (`full_precision=True`), and the `Predictor` (try-it, /predict,
  the CLI) runs full precision, so every number and answer the app shows is exactly what the exported
  model computes (bf16 moved probabilities by up to 0.03 otherwise, measured here);
* the training forward of full, partial and LoRA fine-tuning, images and texts (`training_autocast`,
  table BF16_TRAINING), with float32 islands where bf16's backward is slower on this CPU
  (`float32_islands`: depthwise convolutions in full fine-tuning, the trainable top in partial). Only
  the forward: master weights, gradients, the optimizer state and the loss
  stay float32, and exports are always plain float32, contiguous. Validation and the report's
  predictions inside a run stay float32 (the calibration and the epoch choice see fp32 logits).
Decision, by the numbers (docs/benchmarks.md "Fast path"; `python -m bench.sections.fast --quick
--only accuracy`, AVX512-BF16 EPYC, same subsets and seeds): on the sample digits, MNIST-5k and the
sample reviews, every strategy's held-out accuracy with bf16 lies inside the fp32 result's 95%
interval (and both sides give the same label to most held-out examples), so bf16 is on for all three
fine-tuning strategies of both modalities. SetFit's contrastive stage and the probes' head fits run
float32 (not measured; the head is a single linear layer, nothing to gain).
bf16 changes numbers beyond float32 rounding: each example's features move by up to ~9% (relative
L2) on EfficientNet-Lite0, ~0.6% on MiniLM-L6 (tests/integration/test_fast_path.py states the tolerances).
"""
from __future__ import annotations

import contextlib
import os
import types
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:   # torch only where a function needs it: the web process reads `enabled()` for estimates
    import torch
    from torch import nn

ENV_SWITCH = "TL_FAST_PATH"


def enabled() -> bool:
    """The switch: on unless TL_FAST_PATH is 0/false/no/off."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in {"0", "false", "no", "off"}


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX tiles (bf16 in hardware); False elsewhere or if unknown."""
    import torch

    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except Exception:   # an old or unusual build: treat as absent (silent fall-back)
            continue
    return False


# What Linux's /proc/cpuinfo calls the features torch's probes above look for (cpuinfo's CPUID bits, which
# the kernel reports only when it has enabled their register state too).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_tile"})


def cpu_flags_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """`cpu_has_native_bf16()` without torch, for the web process's time estimate: True when the CPU
    flags the kernel reports include AVX512-BF16 or AMX tiles; False where there is no such file (the
    estimate then assumes the slower path). tests/unit/test_shelf_facts.py checks both agree on this machine."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(NATIVE_BF16_FLAGS & set(line.partition(":")[2].split()))
    except OSError:
        pass
    return False


def describe(modality: str, device_type: str = "cpu", *, full_precision: bool = False) -> dict[str, Any]:
    """What this process will run: recorded in the embedding cache key and the run's summary.
    `full_precision`: a pass that must give the exported model's own numbers (no bf16)."""
    on = enabled()
    return {"channels_last": bool(on and modality == "image"),
            "bf16_inference": bool(on and not full_precision and device_type == "cpu" and cpu_has_native_bf16()),
            "length_buckets": bool(on and modality == "text")}


def prepare_model(model: nn.Module, modality: str) -> nn.Module:
    """Convert a convolutional model's weights to channels-last (in place); others are left as they are."""
    import torch

    if enabled() and modality == "image":
        model.to(memory_format=torch.channels_last)
    return model


def restore_layout(model: nn.Module) -> nn.Module:
    """Plain contiguous weights again (safetensors writes only contiguous tensors; exports stay plain)."""
    for param in model.parameters():
        if param.dim() == 4 and not param.is_contiguous():
            param.data = param.data.contiguous()
    for buffer in model.buffers():
        if buffer.dim() == 4 and not buffer.is_contiguous():
            buffer.data = buffer.data.contiguous()
    return model


def image_input(pixels: torch.Tensor) -> torch.Tensor:
    """A batch of images in the layout the prepared model runs fastest on (a channels-last model given
    plain input converts it in every layer: slower than plain, measured)."""
    import torch

    if enabled() and pixels.dim() == 4:
        return pixels.contiguous(memory_format=torch.channels_last)
    return pixels


def inference_autocast(device_type: str = "cpu", *, full_precision: bool = False):
    """bf16 autocast for a forward pass without gradients, where the CPU has bf16; else nothing.
    `full_precision`: never bf16 (passes whose outputs a user sees or an export must reproduce)."""
    import torch

    if not full_precision and device_type == "cpu" and enabled() and cpu_has_native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# Where bf16 autocast runs in the training forward (native-bf16 CPUs only), per modality and
# strategy. Decided by the measured accuracy, fp32 vs bf16, same subsets and seeds (module docstring).
BF16_TRAINING: dict[str, frozenset[str]] = {"image": frozenset({"full", "partial", "lora"}),
                                            "text": frozenset({"full", "partial", "lora"})}


def bf16_training(modality: str, strategy: str, device_type: str = "cpu") -> bool:
    """Whether this run's training forward runs under bf16 autocast (see BF16_TRAINING)."""
    return bool(device_type == "cpu" and enabled() and strategy in BF16_TRAINING.get(modality, ())
                and cpu_has_native_bf16())


def training_autocast(modality: str, strategy: str, device_type: str = "cpu",
                      islands: Sequence[nn.Module] = ()):
    """bf16 autocast around a training forward where bf16_training says so; else nothing. Only the
    forward: master weights, gradients and the optimizer stay float32 (autocast casts copies), and the
    caller computes the loss outside it, on float32 logits. `islands` (from `float32_islands`, found
    once per epoch: the trainable set does not change within one) run in float32 inside it."""
    import torch

    if not bf16_training(modality, strategy, device_type):
        return contextlib.nullcontext()
    if not islands:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    stack = contextlib.ExitStack()
    stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
    stack.enter_context(_in_float32(islands))
    return stack


def float32_islands(model: nn.Module, modality: str, strategy: str) -> list[nn.Module]:
    """The modules of a bf16 training forward that run faster in float32 on a bf16 CPU, because their
    backward is slow in bf16 there: depthwise convolutions (oneDNN's bf16 depthwise backward took ~2x
    the float32 time on the AVX512-BF16 EPYC) and, in partial fine-tuning, the whole trainable top,
    whose frozen inputs come from a bf16 forward (docs/benchmarks.md, "Fast path", training steps).
    Images only: the text models' steps gain as they are."""
    from torch import nn

    if modality != "image" or strategy not in ("full", "partial"):
        return []
    if strategy == "full":
        return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1
                and m.groups == m.in_channels and m.weight.requires_grad]
    islands, covered = [], set()
    for name, module in model.named_modules():   # parents come before their children
        params = list(module.parameters())
        if not name or any(name.startswith(c + ".") for c in covered) or not params:
            continue
        if all(p.requires_grad for p in params):
            islands.append(module)
            covered.add(name)
    return islands


@contextlib.contextmanager
def _in_float32(modules: Sequence[nn.Module]):
    """Each module's forward without autocast, on float32 inputs, while inside; the modules unchanged
    after (an instance attribute that shadows the class's forward, removed on exit)."""
    for module in modules:
        module.forward = types.MethodType(_float32_forward, module)
    try:
        yield
    finally:
        for module in modules:
            module.__dict__.pop("forward", None)


def _float32_forward(self, *args, **kwargs):
    import torch

    with torch.autocast("cpu", enabled=False):
        args = tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)
        return type(self).forward(self, *args, **kwargs)


def length_order(texts: Sequence[Any]) -> list[int]:
    """Indices that put texts of similar length next to each other (less padding per batch).
    The identity order when the fast path is off or the items are not texts."""
    if not enabled() or not all(isinstance(t, str) for t in texts):
        return list(range(len(texts)))
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))
