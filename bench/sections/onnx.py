"""ONNX Runtime against torch (issue 39, item 3): the exported run's ONNX graphs, float32 and int8, timed side
by side with the app's own torch model on the same preprocessed inputs, at batch 1 and batch 32.

A linear probe is trained with the engine on the sample digits (images, efficientnet_lite0) and on the sample
reviews (texts, MiniLM-L6), exported with `export_run_onnx(run_dir, out, int8=True)` (the app's export; a run
trained on an in-memory subset leaves the export no training images to calibrate the static image int8 on, so
the section then calls the export's own `quantize_int8` on the run's training subset), and then, on the same inputs built once before timing (the Predictor's own eval transform for images; its
tokenizer, truncation and padding for texts):

* torch eager: the Predictor's model forward plus its activation, float32, loaded with the fast path off
  (TL_FAST_PATH=0: plain layout, no autocast);
* fast path (images only): the same run's Predictor loaded with the fast path on — channels-last weights and
  input (fast_path.image_input) and bf16 autocast where the CPU has it natively (fast_path.inference_autocast),
  as bench/sections/fast.py measures it;
* ORT fp32 and ORT int8: `onnxruntime.InferenceSession` on model.onnx / model.int8.onnx, CPU provider,
  intra-op threads = torch.get_num_threads() (recorded), inter-op 1, default graph optimisation.

Every side does the same work: all N inputs, one at a time (batch 1) or 32 at a time (batch 32), the
probabilities as the output. One warm-up pass per side is not timed; then rounds rotate which side goes
first. Rates are inputs per second (median and spread over rounds); ratios are paired per round against torch
eager (side rate / eager rate). A parity check compares each side's probabilities with torch eager's
(max absolute difference, share of equal top labels): fp32 must agree to ~1e-5, int8 and bf16 less.

    python -m bench.sections.onnx [--quick]   # bench/onnx-results[-quick].json
    python bench/run.py --only onnx [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.sections.fast import switch   # TL_FAST_PATH on or off for a block
from bench.harness import ROOT, Clock, OthersLoad, git_state, load_avg, log, machine_info, require_finished, rnd, \
    summary, write_json

RESULTS = {"full": ROOT / "bench" / "onnx-results.json", "quick": ROOT / "bench" / "onnx-results-quick.json"}
PROFILE = {"quick": {"n_images": 32, "n_texts": 64, "train_n": 100, "rounds": 3, "batches": [1, 32], "seed": 0},
           "full": {"n_images": 128, "n_texts": 128, "train_n": 100, "rounds": 5, "batches": [1, 32], "seed": 0}}
FP32_TOLERANCE = 1e-4
N_CALIBRATION = 64   # as tl_ui/engine/inference/onnx_package.py


def _train(root: Path, modality: str, n: int, seed: int):
    from bench.data import MODEL_FOR, sample_dataset
    from tl_ui.core.config import RunConfig
    from tl_ui.data import stratified_subset
    from tl_ui.engine import train_run

    run_dir = root / f"run-{modality}"
    subset = stratified_subset(sample_dataset(modality), n, seed=seed)
    result = train_run(RunConfig(model_id=MODEL_FOR[modality], strategy="linear_probe", seed=seed), run_dir,
                       dataset=subset)
    require_finished(result, f"onnx: the {modality} linear probe to export")
    return run_dir, subset


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _batches(modality: str, predictor, items: list, size: int) -> list:
    """Inputs built before timing: pixels (N,3,H,W) for images; tokenized dicts for texts."""
    import torch

    from tl_ui.engine.models.inputs import open_image

    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    if modality == "image":
        return [torch.stack([predictor.transform(open_image(x, predictor.window)) for x in c]) for c in chunks]
    return [predictor.tokenizer(c, truncation=True, max_length=predictor.max_length, padding=True,
                                return_tensors="pt") for c in chunks]


def _sides(modality: str, eager, fast, sessions: dict, batches: list) -> dict:
    """{side: zero-argument callable returning the probabilities of every input, as one numpy array}."""
    import numpy as np
    import torch

    from tl_ui.engine.models.fast_path import image_input, inference_autocast

    def torch_side(predictor, on: bool):
        def go():
            rows = []
            with switch(on), torch.no_grad(), (inference_autocast() if on else contextlib.nullcontext()):
                for b in batches:
                    logits = (predictor.model(image_input(b)) if modality == "image" else predictor.model(**b).logits)
                    rows.append(predictor.task.activation(logits.float() / predictor.site_temperature))
            return torch.cat(rows).numpy()
        return go

    if modality == "image":
        feeds = [{"pixels": b.numpy()} for b in batches]
    else:
        feeds = [{"input_ids": b["input_ids"].numpy().astype(np.int64),
                  "attention_mask": b["attention_mask"].numpy().astype(np.int64)} for b in batches]

    def ort_side(session):
        def go():
            return np.concatenate([session.run(["probabilities"], f)[0] for f in feeds])
        return go

    sides = {"torch_eager": torch_side(eager, False)}
    if fast is not None:
        sides["fast_path"] = torch_side(fast, True)
    sides.update({name: ort_side(s) for name, s in sessions.items()})
    return sides


def _time(sides: dict, rounds: int, n_items: int) -> tuple[dict, dict]:
    """Warm-up once each (also the parity outputs), then `rounds` rounds rotating who goes first."""
    outputs = {name: go() for name, go in sides.items()}
    names, times = list(sides), {name: [] for name in sides}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            with Clock() as c:
                sides[name]()
            times[name].append(c.wall)
    eager = times["torch_eager"]
    rates = {name: {"per_s": summary([n_items / t for t in ts], 1),
                    "ratio_to_eager": summary([e / t for e, t in zip(eager, ts)], 2)}
             for name, ts in times.items()}
    return rates, outputs


def _parity(outputs: dict) -> dict:
    ref = outputs["torch_eager"]
    return {name: {"max_abs_difference": float(abs(out - ref).max()),
                   "same_top_label": rnd(float((out.argmax(1) == ref.argmax(1)).mean()), 4)}
            for name, out in outputs.items() if name != "torch_eager"}


def measure(root: Path, modality: str, cfg: dict, threads: int) -> dict:
    import json

    from bench.data import sample_dataset
    from tl_ui.engine import Predictor
    from tl_ui.engine.inference.onnx_package import export_run_onnx

    t0 = time.perf_counter()
    run_dir, subset = _train(root, modality, cfg["train_n"], cfg["seed"])
    train_s = time.perf_counter() - t0
    out_dir = root / f"onnx-{modality}"
    t0 = time.perf_counter()
    report = export_run_onnx(run_dir, out_dir, int8=True)
    export_s = time.perf_counter() - t0
    preprocess = json.loads((out_dir / "preprocess.json").read_text())
    int8_how = "export_run_onnx"
    if modality == "image" and not (out_dir / "model.int8.onnx").exists():
        # a run trained on an in-memory subset has no data_path in run.json, so the export finds no training
        # images to calibrate on: the same quantize_int8 the export calls, on the run's own training subset
        from tl_ui.engine.export.onnx_export import quantize_int8

        train_items = list(subset.items)[::max(1, len(subset.items) // N_CALIBRATION)][:N_CALIBRATION]
        report["int8"] = quantize_int8(out_dir, preprocess, train_items)
        int8_how = f"quantize_int8 on {len(train_items)} of the run's training images (as the export does)"
    with switch(False):
        eager = Predictor.load(run_dir)
    fast = None
    if modality == "image":
        with switch(True):
            fast = Predictor.load(run_dir)
    if list(preprocess["classes"]) != list(eager.classes):
        raise RuntimeError(f"onnx {modality}: class order differs: {preprocess['classes']} vs {eager.classes}")
    sessions = {"ort_fp32": _session(out_dir / "model.onnx", threads)}
    if (out_dir / "model.int8.onnx").exists():
        sessions["ort_int8"] = _session(out_dir / "model.int8.onnx", threads)
    n = cfg["n_images" if modality == "image" else "n_texts"]
    data = sample_dataset(modality)
    items = [data.items[i % len(data.items)] for i in range(n)]
    out = {"n_inputs": n, "int8_from": int8_how, "train_s": rnd(train_s, 1), "export_s": rnd(export_s, 1),
           "export_report": {k: report.get(k) for k in ("fp32", "int8") if k in report},
           "file_bytes": {f: (out_dir / f).stat().st_size for f in ("model.onnx", "model.int8.onnx")
                          if (out_dir / f).exists()}}
    for size in cfg["batches"]:
        batches = _batches(modality, eager, items, size)
        rates, outputs = _time(_sides(modality, eager, fast, sessions, batches), cfg["rounds"], n)
        out[f"batch_{size}"] = {"rates": rates, "parity": _parity(outputs)}
        unit = "img/s" if modality == "image" else "seq/s"
        log(f"onnx {modality} batch {size}: " + ", ".join(
            f"{k} {v['per_s']['median']} {unit} (x{v['ratio_to_eager']['median']})" for k, v in rates.items()))
        log(f"onnx {modality} batch {size} parity: {out[f'batch_{size}']['parity']}")
    return out


def run(cfg: dict) -> dict:
    import onnxruntime
    import torch

    from tl_ui.engine.models.fast_path import cpu_has_native_bf16

    threads = torch.get_num_threads()
    root = Path(tempfile.mkdtemp(prefix="tlbench-onnx-"))
    try:
        out = {"settings": dict(cfg), "threads": {"torch": threads, "ort_intra_op": threads, "ort_inter_op": 1},
               "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
               "native_bf16": cpu_has_native_bf16()}
        for modality in ("image", "text"):
            out[modality] = measure(root, modality, cfg, threads)
        fp32_ok = all(p["ort_fp32"]["max_abs_difference"] <= FP32_TOLERANCE
                      for m in ("image", "text") for k, v in out[m].items() if k.startswith("batch_")
                      for p in [v["parity"]])
        out["fp32_parity_ok"], out["fp32_tolerance"] = fp32_ok, FP32_TOLERANCE
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    machine = machine_info()
    others = OthersLoad().start()
    result = run(PROFILE[mode])
    command = "python -m bench.sections.onnx" + (" --quick" if args.quick else "")
    write_json(RESULTS[mode], {"mode": mode, "command": command, "started": started, "machine": machine,
                               "others_cpu_share": others.share(), "load_avg_after": load_avg(), **git_state(),
                               **result})
    log(f"wrote {RESULTS[mode]}")
    return 0 if result["fp32_parity_ok"] else 1


if __name__ == "__main__":
    for key, value in (("HF_HUB_OFFLINE", "1"), ("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                       ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    sys.exit(main())
