"""Four small real runs whose metrics.json are pinned in tests/data/pinned_metrics/ (issue 37): a
single-label image probe on the sample digits, a single-label text probe on the sample reviews, a
partial-unfreezing image run (2 epochs, 64 px) and a multi-label text probe (tests/helpers/multilabel_data.py).
Refactoring the engine must not change a number of them; tests/integration/test_pinned_metrics.py re-runs them.

The runs use plain float32 (`TL_FAST_PATH=0`: the bf16 fast path exists only on some CPUs) and one
torch thread, so that they repeat exactly — on one kind of CPU. Another kind (other vector instructions)
picks other kernels, whose last bits differ, and a probability at a tie or an L-BFGS stopping test can then
move a ROC point or an iteration count. So a machine kind may have its own pins: the fixtures in
`pinned_metrics/<machine kind>/` when that folder exists (`machine_kind()`: torch's CPU capability, the CPU's
model and a hash of its flags), the reference ones in `pinned_metrics/` otherwise. The flag hash is finer than
the kernels: a machine of a known kind can show another hash (a flag more or less from its hypervisor) and give
one known kind's numbers to the last bit. So a run also passes when it equals, number for number, the pins of
any known kind (`pinned_candidates`): the known kinds' pins differ from each other in dozens to hundreds of
numbers, so a change that moves a number matches none of them. Rewrite them only when a
change is *meant* to change the numbers, and say why in the commit:

    .venv/bin/python -m tests.helpers.pinned_runs --write    (this machine kind's folder; from the repository root)
    .venv/bin/python -m tests.helpers.pinned_runs --write --reference    (the reference fixtures)
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "data" / "pinned_metrics"
# Timings differ run to run; everything else must not.
TIMING_KEYS = ("train_seconds", "fit_seconds", "elapsed_s", "seconds")
FLOAT_TOLERANCE = 1e-9


def _digits() -> str:
    from tl_ui.data import sample_dataset_path

    return str(sample_dataset_path("image"))


def _reviews() -> str:
    from tl_ui.data import sample_dataset_path

    return str(sample_dataset_path("text"))


def _terms(folder: Path) -> str:
    from tests.helpers.multilabel_data import write_mfd_csv

    return str(write_mfd_csv(folder / "mfd.csv", 60))


# name -> (data maker, RunConfig fields)
RUNS: dict[str, tuple[Callable[[Path], str], dict[str, Any]]] = {
    "digits_probe": (lambda _: _digits(), dict(model_id="efficientnet_lite0", strategy="linear_probe",
                                               image_size=64, max_examples=120)),
    "reviews_probe": (lambda _: _reviews(), dict(model_id="minilm_l6", strategy="linear_probe", max_length=48,
                                                 max_examples=160)),
    "digits_partial": (lambda _: _digits(), dict(model_id="efficientnet_lite0", strategy="partial", image_size=64,
                                                 max_examples=60, epochs=2)),
    "multilabel_probe": (_terms, dict(model_id="minilm_l6", strategy="linear_probe", max_length=32)),
}


def run_pinned(name: str, workdir: Path) -> dict:
    """Train the pinned run `name` in `workdir`: {file: content} of what it wrote that holds numbers
    (metrics.json, model/transfer_lab.json, predictions.csv as rows)."""
    from tl_ui.core.config import RunConfig
    from tl_ui.engine.training.loop import train_run

    make_data, fields = RUNS[name]
    before = os.environ.get("TL_FAST_PATH")
    os.environ["TL_FAST_PATH"] = "0"
    try:
        config = RunConfig(data_path=make_data(workdir), seed=0, num_threads=1, **fields)
        result = train_run(config, workdir / "run")
    finally:
        if before is None:
            os.environ.pop("TL_FAST_PATH", None)
        else:
            os.environ["TL_FAST_PATH"] = before
    assert result.status == "finished", result.message
    run = workdir / "run"
    with open(run / "predictions.csv", encoding="utf-8", newline="") as handle:
        predictions = [[_number(cell) for cell in row] for row in csv.reader(handle)]
    return {"metrics.json": json.loads((run / "metrics.json").read_text(encoding="utf-8")),
            "model/transfer_lab.json": json.loads((run / "model" / "transfer_lab.json").read_text(encoding="utf-8")),
            "predictions.csv": predictions}


def _number(cell: str):
    try:
        return float(cell)
    except ValueError:
        return cell


def comparable(value: Any) -> Any:
    """metrics.json without its timings, and with file paths (a temporary folder's) as their last part."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name
    return value


def differences(pinned: Any, got: Any, where: str = "") -> list[str]:
    """Every place the two differ: keys, types, strings, integers exactly; floats within FLOAT_TOLERANCE."""
    if isinstance(pinned, dict) and isinstance(got, dict):
        out = [f"{where}.{k}: missing" for k in pinned.keys() - got.keys()]
        out += [f"{where}.{k}: new" for k in got.keys() - pinned.keys()]
        for k in pinned.keys() & got.keys():
            out += differences(pinned[k], got[k], f"{where}.{k}")
        return out
    if isinstance(pinned, list) and isinstance(got, list):
        if len(pinned) != len(got):
            return [f"{where}: {len(pinned)} items pinned, {len(got)} now"]
        return [d for i, (a, b) in enumerate(zip(pinned, got)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(pinned, float) or isinstance(got, float):
        if isinstance(pinned, (int, float)) and isinstance(got, (int, float)) and not isinstance(pinned, bool):
            if math.isnan(pinned) and math.isnan(got):
                return []
            return [] if abs(pinned - got) <= FLOAT_TOLERANCE else [f"{where}: {pinned!r} pinned, {got!r} now"]
    return [] if pinned == got else [f"{where}: {pinned!r} pinned, {got!r} now"]


def machine_kind() -> str:
    """What decides the last bits of a float32 run on this computer: torch's CPU kernels (AVX2, AVX512, ...),
    the CPU's model name and a hash of its flags (two generations of one model name differ there)."""
    import torch

    model, flags = "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    slug = re.sub(r"[^A-Za-z0-9]+", "_", model).strip("_")[:40]
    return f"{torch.backends.cpu.get_cpu_capability()}-{slug}-{hashlib.sha256(flags.encode()).hexdigest()[:8]}"


def fixture_path(name: str) -> Path:
    """This machine kind's pins of `name` when it has its own, the reference pins otherwise."""
    own = FIXTURES / machine_kind() / f"{name}.json"
    return own if own.is_file() else FIXTURES / f"{name}.json"


def pinned_candidates(name: str) -> list[Path]:
    """Every pinned copy of `name`: this machine kind's (or the reference) first, then every other known kind's."""
    first = fixture_path(name)
    others = sorted(folder / f"{name}.json" for folder in FIXTURES.iterdir() if folder.is_dir())
    return [first] + [path for path in [FIXTURES / f"{name}.json", *others] if path.is_file() and path != first]


def write_fixtures(names=tuple(RUNS), reference: bool = False) -> None:
    folder = FIXTURES if reference else FIXTURES / machine_kind()
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"tl-pin-{name}-") as scratch:
            record = comparable(run_pinned(name, Path(scratch)))
        (folder / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print("wrote", folder / f"{name}.json")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--write"]:
        sys.exit(__doc__)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    flags = [a for a in sys.argv[2:] if a.startswith("--")]
    write_fixtures(tuple(a for a in sys.argv[2:] if not a.startswith("--")) or tuple(RUNS),
                   reference="--reference" in flags)
