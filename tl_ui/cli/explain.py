"""`python -m tl_ui explain --run DIR INPUT --out FILE`: what one prediction of a trained run rests on.

Images: a PNG of the input with its Grad-CAM map laid over it. Texts: per-word weights, as an HTML
page (`--out x.html`) or JSON (any other name). A one-line JSON summary goes to stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def add_explain_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "explain", help="show what a trained run's prediction for one input rests on",
        description="Images: a Grad-CAM overlay PNG. Texts: per-word attributions (integrated gradients) "
                    "as HTML or JSON. A map shows where the model looked, not whether it is right.")
    parser.add_argument("--run", required=True, help="run folder (or its model/ folder)")
    parser.add_argument("input", help="an image file, or a text")
    parser.add_argument("--out", required=True, help="file to write: .png for images; .html or .json for texts")
    parser.add_argument("--class", dest="target", help="the class to explain (default: the predicted one)")
    parser.set_defaults(handler=explain_command)
    return parser


def explain_command(args: argparse.Namespace) -> int:
    from tl_ui.engine import PredictError, Predictor
    from tl_ui.engine.inference.explain import explain

    out = Path(args.out)
    try:
        predictor = Predictor.load(args.run)
        if predictor.modality == "image" and not Path(args.input).is_file():
            raise PredictError(f"No such image file: {args.input}")
        suffixes = (".png",) if predictor.modality == "image" else (".html", ".json")
        if out.suffix.lower() not in suffixes:
            raise PredictError(f"--out must end in {' or '.join(suffixes)} for this {predictor.modality} model.")
        if not out.parent.is_dir():
            raise PredictError(f"The folder for --out does not exist: {out.parent}")
        result = explain(predictor, args.input, args.target)
    except PredictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ImportError as exc:   # grad-cam / captum are an extra
        print(f"error: explanations need the 'explain' extra ({exc.name} is not installed): "
              "pip install -e '.[explain]'", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result["kind"] == "image":
        result["overlay"].save(out)
    elif out.suffix.lower() == ".html":
        out.write_text(f"<!doctype html><meta charset=utf-8><title>Explanation</title>{result['html']}\n",
                       encoding="utf-8")
    else:
        keep = ("class", "probability", "predicted", "words", "completeness_gap")
        out.write_text(json.dumps({k: result[k] for k in keep}, indent=2), encoding="utf-8")
    print(json.dumps({"class": result["class"], "probability": round(result["probability"], 4),
                      "predicted": result["predicted"], "out": str(out)}))
    return 0
