"""A finished run as an ONNX folder (issue 39), measured rather than promised:

    OUT/model.onnx          fp32: input -> calibrated probabilities (tl_ui/engine/export/onnx_export.py)
    OUT/model.int8.onnx     with int8: dynamic (texts) or static, calibrated on training images (images)
    OUT/preprocess.json     classes, opset, and how inputs are prepared (the model's own timm data config /
                            the tokenizer's max_length and padding)
    OUT/tokenizer.json      texts: the tokenizer (the `tokenizers` library reads it)
    OUT/predict_onnx.py     `python predict_onnx.py INPUT` -> {"probabilities": {class: p}} (numpy, onnxruntime,
                            Pillow or tokenizers)
    OUT/onnx_report.json    parity with the app on the test examples; int8's accuracy, its paired difference to
                            fp32 with an interval, size and speed ratios
    OUT/README.md           the files, the figures, and the model card

Written under a temporary name beside OUT and renamed into place when complete; owner-only permissions.
"""
from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from tl_ui.core.folders import replace_when_done
from tl_ui.core.runfolder import MODEL_DIR, ONNX_REPORT_JSON, PREDICTIONS_CSV
from tl_ui.engine.export import onnx_export as ox

N_CALIBRATION = 64   # training images the static int8 model calibrates its activation ranges on
SPEED_REPEATS = 3


def export_run_onnx(run_dir: str | Path, out_dir: str | Path, *, int8: bool = False,
                    on_progress: Optional[Callable[[int, int, str], None]] = None) -> dict:
    """Write the ONNX folder OUT for the run's model; returns onnx_report.json's content."""
    from tl_ui.engine.tasks import task_for_export

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model_dir = run_dir / MODEL_DIR if (run_dir / MODEL_DIR).is_dir() else run_dir
    run_dir = model_dir.parent
    progress = on_progress or (lambda *_: None)
    steps = 5 if int8 else 3
    manifest = ox.read_manifest(model_dir)
    if manifest is None:
        raise ox.OnnxExportError("This run has no finished model to export. Train a model first, or pick a run "
                                 "that finished.")
    task = task_for_export(manifest, list(manifest["classes"]))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with replace_when_done(out_dir) as tmp:
        progress(1, steps, "Writing the ONNX graph")
        config = ox.export_fp32(model_dir, tmp, task.activation)
        ox.copy_standalone(tmp, "predict_onnx.py")
        progress(2, steps, "Checking it against the app's answers")
        report = _fp32_report(tmp, run_dir, config)
        if int8:
            progress(3, steps, "Quantising to int8")
            with tempfile.TemporaryDirectory(prefix="tl-calibration-") as scratch:
                calibration = _training_items(run_dir, Path(scratch), N_CALIBRATION) if config["modality"] == "image" else []
                try:
                    report["int8"] = ox.quantize_int8(tmp, config, calibration)
                except ox.OnnxExportError as exc:   # no training images to calibrate on: fp32 alone, and why
                    report["int8"] = {"note": str(exc)}
            progress(4, steps, "Measuring int8 on the test examples")
            if "note" not in report["int8"]:
                report["int8"].update(_int8_report(tmp, run_dir, config))
        progress(steps, steps, "Writing the README")
        (tmp / ONNX_REPORT_JSON).write_text(json.dumps(report, indent=2), encoding="utf-8")
        (tmp / "README.md").write_text(_readme(model_dir, config, report), encoding="utf-8")
        ox.owner_only(tmp)
    return report


def readable_test_examples(run_dir: Path, config: dict) -> tuple[list, np.ndarray, np.ndarray]:
    """(items, true class indices, the app's probabilities) of the run's test examples that can be read
    (predictions.csv; images whose files are still there)."""
    path = Path(run_dir) / PREDICTIONS_CSV
    if not path.is_file():
        return [], np.empty(0, int), np.empty((0, len(config["classes"])))
    classes = config["classes"]
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and (f"p_{classes[0]}" not in rows[0] or "true" not in rows[0]):
        return [], np.empty(0, int), np.empty((0, len(classes)))   # multi-label tables: no parity figures
    if config["modality"] == "image":
        rows = [r for r in rows if Path(r["item"]).is_file()]
    index = {c: i for i, c in enumerate(classes)}
    rows = [r for r in rows if r["true"] in index]
    return ([r["item"] for r in rows], np.array([index[r["true"]] for r in rows], dtype=int),
            np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows], dtype=np.float64))


def _fp32_report(out_dir: Path, run_dir: Path, config: dict) -> dict:
    items, truth, app = readable_test_examples(run_dir, config)
    report = {"format": "onnx", "opset": config["opset"], "exporter": config["exporter"],
              "modality": config["modality"], "classes": config["classes"], "temperature": config["temperature"],
              "temperature_folded": True, "fp32_file": ox.FP32_FILE,
              "fp32_bytes": (out_dir / ox.FP32_FILE).stat().st_size, "n_test": len(items)}
    if items:
        probs = ox.onnx_probabilities(out_dir, items)
        report["parity_max_abs_diff"] = float(np.abs(probs - app).max())   # app's table: 6 decimals
        report["parity_note"] = ("largest difference between the ONNX probabilities and the run's own test-example "
                                 "probabilities (predictions.csv, 6 decimals)")
        report["fp32_accuracy"] = float((probs.argmax(1) == truth).mean())
    return report


def _int8_report(out_dir: Path, run_dir: Path, config: dict) -> dict:
    from tl_ui.trust.intervals import paired_bootstrap_accuracy_diff
    from tl_ui.trust.proportions import wilson_interval

    sizes = {"int8_file": ox.INT8_FILE, "int8_bytes": (out_dir / ox.INT8_FILE).stat().st_size}
    sizes["size_ratio"] = round((out_dir / ox.FP32_FILE).stat().st_size / sizes["int8_bytes"], 2)
    items, truth, _ = readable_test_examples(run_dir, config)
    if not items:
        return {**sizes, "note": "The run's test examples could not be read, so int8 was not measured."}
    fp32 = ox.onnx_probabilities(out_dir, items, ox.FP32_FILE)
    int8 = ox.onnx_probabilities(out_dir, items, ox.INT8_FILE)
    n, right = len(truth), int((int8.argmax(1) == truth).sum())
    difference = paired_bootstrap_accuracy_diff(truth, int8.argmax(1), fp32.argmax(1))
    speed = {name: _seconds(out_dir, items, name) for name in (ox.FP32_FILE, ox.INT8_FILE)}
    return {**sizes, "n_test": n, "accuracy": right / n, "accuracy_ci": list(wilson_interval(right, n)),
            "fp32_accuracy": float((fp32.argmax(1) == truth).mean()),
            "difference": difference["difference"], "difference_ci": difference["ci"],
            "difference_method": "paired bootstrap on the same test examples (int8 minus fp32)",
            "agreement": float((int8.argmax(1) == fp32.argmax(1)).mean()),
            "max_abs_diff_to_fp32": float(np.abs(int8 - fp32).max()),
            "fp32_seconds": speed[ox.FP32_FILE], "int8_seconds": speed[ox.INT8_FILE],
            "speed_ratio": round(speed[ox.FP32_FILE] / max(speed[ox.INT8_FILE], 1e-9), 2),
            "speed_note": f"best of {SPEED_REPEATS} passes over the {n} test examples, batch 16, ONNX Runtime on "
                          "this machine's CPU",
            "sentence": int8_sentence(sizes["size_ratio"], speed[ox.FP32_FILE] / max(speed[ox.INT8_FILE], 1e-9),
                                      difference["difference"], difference["ci"])}


def _seconds(out_dir: Path, items: list, model_file: str) -> float:
    standalone = ox.load_standalone(out_dir)
    session = standalone.session(model_file)
    best = float("inf")
    for _ in range(SPEED_REPEATS):
        start = time.perf_counter()
        for i in range(0, len(items), 16):
            standalone.probabilities(items[i:i + 16], session)
        best = min(best, time.perf_counter() - start)
    return round(best, 4)


def int8_sentence(size_ratio: float, speed_ratio: float, difference: float, ci) -> str:
    """E.g. 'int8: 3.9× smaller, 1.9× faster here, accuracy −0.5 points (−2.1 to +1.0).'"""
    def points(x: float) -> str:
        value = round(x * 100, 1)
        return f"{'−' if value < 0 else '+' if value > 0 else '±'}{abs(value):.1f}"

    pace = f"{speed_ratio:.1f}× faster" if speed_ratio >= 1.05 else (
        f"{1 / speed_ratio:.1f}× slower" if speed_ratio <= 0.95 else "about as fast")
    return (f"int8: {size_ratio:.1f}× smaller, {pace} here, accuracy {points(difference)} points "
            f"({points(ci[0])} to {points(ci[1])}) on the test examples.")


def _training_items(run_dir: Path, scratch: Path, limit: int) -> list:
    """Up to `limit` of the run's training images (its own split rebuilt from run.json; a zip is unpacked into
    `scratch`); [] when the data cannot be read any more."""
    from tl_ui.core.config import RunConfig
    from tl_ui.data import DataError, Limits, load_dataset, stratified_subset
    from tl_ui.data.load import dataset_options
    from tl_ui.engine.evaluation.roles import split_roles

    try:
        config = RunConfig.load(Path(run_dir) / "run.json")
        dataset = load_dataset(config.data_path, scratch, **dataset_options(config),
                               limits=Limits.from_record(config.limits) if config.limits else None)
        if config.max_examples and config.max_examples < len(dataset):
            dataset = stratified_subset(dataset, int(config.max_examples), config.seed)
        roles = split_roles(dataset, config.val_fraction, config.seed, config.evaluation)
    except (DataError, OSError, ValueError):
        return []
    train = [dataset.items[i] for i in roles.train]
    step = max(1, len(train) // limit)
    return [item for item in train[::step][:limit] if Path(item).is_file()]


def _readme(model_dir: Path, config: dict, report: dict) -> str:
    files = [("model.onnx", "fp32 graph: input → calibrated probabilities (temperature folded in), dynamic batch")]
    if (tmp_int8 := report.get("int8") or {}).get("method"):
        files.append(("model.int8.onnx", f"int8 graph ({tmp_int8['method']})"))
    files += [("preprocess.json", "classes, opset and how inputs are prepared (read by predict_onnx.py)")]
    if config["modality"] == "text":
        files.append(("tokenizer.json", "the tokenizer, for the `tokenizers` library"))
    files += [("predict_onnx.py", "`python predict_onnx.py INPUT` prints {\"probabilities\": {class: p}}"),
              ("onnx_report.json", "parity with the app, int8 accuracy and its difference, size and speed"),
              ("README.md", "this file")]
    table = "\n".join(f"| `{name}` | {what} |" for name, what in files)
    inputs = ("`pixels`: float32, batch × 3 × {1} × {2}, resized and normalised as `preprocess.json` says".format(
        *config["input_size"]) if config["modality"] == "image" else
        "`input_ids`, `attention_mask`: int64, batch × tokens, from `tokenizer.json` (truncated to "
        f"{config['max_length']} tokens)")
    lines = [f"# ONNX export (opset {report['opset']})", "",
             f"Input {inputs}; output `probabilities` (batch × {len(config['classes'])}, classes in the order of "
             "`preprocess.json`).", "", "| file | what |", "|---|---|", table, ""]
    if report.get("parity_max_abs_diff") is not None:
        lines.append(f"* Parity: on {report['n_test']} test examples the fp32 graph's probabilities differ from "
                     f"the app's by at most {report['parity_max_abs_diff']:.1e}.")
    if (report.get("int8") or {}).get("sentence"):
        i8 = report["int8"]
        lines.append(f"* {i8['sentence']} int8 accuracy {i8['accuracy']:.3f} on {i8['n_test']} test examples "
                     f"(fp32 {i8['fp32_accuracy']:.3f}); difference interval: {i8['difference_method']}.")
    lines += ["", "```", "pip install numpy onnxruntime " + ("pillow" if config["modality"] == "image" else "tokenizers"),
              "python predict_onnx.py " + ("image.png" if config["modality"] == "image" else "\"your text here\""),
              "```", ""]
    if config.get("image_window"):
        lines.append(f"Images were DICOM files read with the {config['image_window']} window: predict_onnx.py "
                     "reads PNG/JPEG only, so apply that window first.")
    card = (Path(model_dir) / "README.md")
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        if text.startswith("---"):
            text = text.split("---", 2)[-1]
        lines += ["## The model card", "", text.replace("\n# ", "\n### ").strip(), ""]
    return "\n".join(lines)


SPACE_REQUIREMENTS = {"image": ["gradio>=4.44", "onnxruntime>=1.20", "numpy", "pillow"],
                      "text": ["gradio>=4.44", "onnxruntime>=1.20", "numpy", "tokenizers>=0.19"]}


def build_space(run_dir: str | Path, space_dir: str | Path,
                on_progress: Optional[Callable[[int, int, str], None]] = None) -> Path:
    """A complete Gradio Space for the run's model: app.py (a try-it page on ONNX Runtime; its first named API
    endpoint, /classify, takes the image path or the text first), README.md with Space front matter, requirements.txt
    (no torch, no training stack), space.json (what the page shows above the box) and the fp32 ONNX folder's files.
    Written under a temporary name and renamed into place; owner-only."""
    from tl_ui.core.catalog import list_models

    run_dir, space_dir = Path(run_dir), Path(space_dir)
    model_dir = run_dir / MODEL_DIR
    manifest = ox.read_manifest(model_dir) or {}
    with replace_when_done(space_dir) as tmp:
        report = export_run_onnx(run_dir, tmp, int8=False, on_progress=on_progress)   # replaces the empty tmp
        ox.copy_standalone(tmp, "app.py")
        modality = report["modality"]
        entry = next((e for e in list_models() if e.id == manifest.get("base_model")), None)
        card = (model_dir / "README.md").read_text(encoding="utf-8") if (model_dir / "README.md").is_file() else ""
        title = f"{modality.capitalize()} classifier: {', '.join(report['classes'][:4])}" + (
            "…" if len(report["classes"]) > 4 else "")
        info = {"title": title, "modality": modality, "classes": report["classes"],
                "intended_use": card_section(card, "Intended use and limits"),
                "how_well": card_section(card, "How well it works").split("\n\n")[0],
                "base_model": entry.display_name if entry else manifest.get("base_model"),
                **_decision_blocks(manifest)}
        (tmp / "space.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        (tmp / "requirements.txt").write_text("\n".join(SPACE_REQUIREMENTS[modality]) + "\n", encoding="utf-8")
        licence = _hub_licence(entry.licence if entry else "")
        description = f"Try {'an image' if modality == 'image' else 'a text'} classifier trained with Transfer Lab"[:60]
        front = ["---", f"title: {json.dumps(title[:60], ensure_ascii=False)}", "emoji: 🔬", "colorFrom: blue", "colorTo: gray",
                 "sdk: gradio", "app_file: app.py", f"license: {licence}",
                 f"short_description: {json.dumps(description)}", "tags: [transfer-lab, onnx]", "---", ""]
        readme = (tmp / "README.md").read_text(encoding="utf-8")
        (tmp / "README.md").write_text("\n".join(front) + f"# {title}\n\nA try-it page for this model "
                                       "(ONNX Runtime; `python app.py`). Besides the files below: `app.py` (the page; its API "
                                       "endpoint `/classify` takes the input first), `requirements.txt`, `space.json` "
                                       "(what the page shows above the box).\n\n" + readme, encoding="utf-8")
        ox.owner_only(tmp)
    return space_dir


def _decision_blocks(manifest: dict) -> dict:
    """What the Space shows beside the probabilities, from transfer_lab.json: the prediction set at the run's default
    level (split conformal threshold `qhat`: the classes with 1 - p <= qhat, the most likely alone if none) and the
    decision at the saved operating point."""
    blocks: dict = {}
    conformal = manifest.get("conformal") or {}
    level = conformal.get("default_level")
    qhat = (conformal.get("thresholds") or {}).get(str(level)) if level is not None else None
    if qhat is not None and not manifest.get("multilabel"):
        blocks["prediction_set"] = {"level": float(level), "qhat": float(qhat)}
    point = manifest.get("operating_point")
    if point:
        blocks["operating_point"] = {"positive_class": str(point["positive_class"]),
                                     "threshold": float(point["threshold"])}
    return blocks


def card_section(card: str, heading: str) -> str:
    """The text of a model card's `## heading...` section (up to the next `## `)."""
    lines, inside = [], False
    for line in card.splitlines():
        if line.startswith("## "):
            if inside:
                break
            inside = line[3:].startswith(heading)
            continue
        if inside:
            lines.append(line)
    return "\n".join(lines).strip()


def _hub_licence(licence: str) -> str:
    """The Hub's licence identifier for a shelf licence ("Apache-2.0" -> "apache-2.0"); "other" when unknown."""
    known = {"apache-2.0", "mit", "bsd-3-clause", "bsd-2-clause", "cc-by-4.0", "cc-by-sa-4.0", "openrail"}
    word = (licence or "").split(" ")[0].strip().lower()
    return word if word in known else "other"
