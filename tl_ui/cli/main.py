"""Headless command line: `python -m tl_ui {models,check-data,train,predict,validate,explain,advise,suggest,export,
share,push,report}`.

Exit status: 0 success, 1 a run that failed or was stopped, 2 bad arguments or bad data.
Messages for people go to stderr without tracebacks; JSON goes to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tl_ui.core.config import SET_LEVELS


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    parser = argparse.ArgumentParser(prog="python -m tl_ui", description="Transfer Lab, headless.")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the model shelf")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument("--modality", choices=["image", "text"])
    models.set_defaults(handler=_models)

    from tl_ui.cli.data import add_check_data_parser
    add_check_data_parser(commands)

    from tl_ui.cli.train import add_train_parser
    add_train_parser(commands)

    predict = commands.add_parser("predict", help="predict with a trained run (inputs, or a batch: --data ... --out ...)")
    predict.add_argument("--run", required=True, help="run folder (or its model/ folder)")
    predict.add_argument("inputs", nargs="*", help="image files, or texts")
    predict.add_argument("--data", help="a batch: a zip or folder of images, or a table of texts or image paths")
    predict.add_argument("--out", help="with --data: the table to write (predictions.csv)")
    predict.add_argument("--xlsx", action="store_true", help="with --data: also write the table as .xlsx beside it")
    predict.add_argument("--text-column", help="with --data: the table's text column (default: detected)")
    predict.add_argument("--path-column", help="with --data: the table's image path column (default: detected)")
    predict.add_argument("--json", action="store_true",
                         help="print JSON: {probabilities, prediction_set, set_level, unlike_training_data (true/false; "
                         "null for runs without the reference), unlike_training_data_score, "
                         "unlike_training_data_threshold, and for a run with an operating point: decision ('positive' or "
                         "'negative' at the saved threshold), threshold, positive_class} (a list for several inputs)")
    predict.add_argument("--level", type=float, choices=SET_LEVELS, help="prediction-set level (default: the run's)")
    predict.set_defaults(handler=_predict)

    from tl_ui.cli.new_data import add_validate_parser
    add_validate_parser(commands)

    from tl_ui.cli.explain import add_explain_parser
    add_explain_parser(commands)

    from tl_ui.cli.advise import add_advise_parser
    add_advise_parser(commands)

    from tl_ui.cli.share import add_share_parsers
    add_share_parsers(commands)   # export --format onnx, share, push (issue 39)
    from tl_ui.cli.suggest import add_suggest_parser
    add_suggest_parser(commands)

    report = commands.add_parser("report", help="write a run's study report (TRIPOD+AI layout) as HTML or PDF")
    report.add_argument("--run", required=True, help="the run folder to report on")
    report.add_argument("--compare", nargs="+", default=[], metavar="DIR", help="other run folders to compare it with")
    report.add_argument("--out", required=True, help="report.html or report.pdf (PDF: the 'report' extra)")
    report.set_defaults(handler=_report)

    hashing = commands.add_parser("hash-password", help="print a password hash for a TL_AUTH_FILE line")
    hashing.add_argument("user", nargs="?", help="user name: prints 'user:hash' (else the hash alone)")
    hashing.set_defaults(handler=_hash_password)

    args = parser.parse_args(argv)
    return args.handler(args)


def _hash_password(args) -> int:
    """Reads the password from the terminal (not echoed) or from standard input, never from a flag."""
    import getpass

    from tl_ui.core.auth import hash_password

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not password:
        print("error: the password is empty.", file=sys.stderr)
        return 2
    hashed = hash_password(password)
    print(f"{args.user}:{hashed}" if args.user else hashed)
    return 0


def _report(args) -> int:
    from tl_ui.service.errors import UserError
    from tl_ui.service.report import export_report

    try:
        written = export_report(args.run, args.out, args.compare)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(written)
    return 0


def _models(args) -> int:
    from tl_ui.core.catalog import list_models

    entries = list_models(args.modality)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    for e in entries:
        badge = "offline" if e.offline else "needs network"
        print(f"{e.id:20s} {e.modality:5s} {e.params_m:6.1f}M  {badge:13s} {e.display_name}")
    return 0


def _predict(args) -> int:
    from tl_ui.engine import PredictError, Predictor

    if args.data:
        from tl_ui.cli.new_data import predict_batch

        return predict_batch(args)
    if not args.inputs:
        print("error: give inputs to predict, or a batch with --data DIR_OR_TABLE --out predictions.csv", file=sys.stderr)
        return 2

    try:
        predictor = Predictor.load(args.run)
        if predictor.modality == "image":
            missing = [x for x in args.inputs if not Path(x).is_file()]
            if missing:
                raise PredictError(f"No such image file: {missing[0]}")
        answers = predictor.predict_with_set(args.inputs, args.level)
    except PredictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        keep = ("probabilities", "prediction_set", "set_level", "decision", "threshold", "positive_class",
                "unlike_training_data", "unlike_training_data_score", "unlike_training_data_threshold")
        shown = [{k: a[k] for k in keep + ("labels", "thresholds") if k in a} for a in answers]   # multi-label: labels
        print(json.dumps(shown[0] if len(shown) == 1 else shown, indent=2))
        return 0
    for item, answer in zip(args.inputs, answers):
        top, p = next(iter(answer["probabilities"].items()))
        print(f"{item}: {top} ({p:.0%})" + (f" · {answer['set_sentence']}" if answer.get("set_sentence") else "")
              + (f" · {answer['decision_sentence']}" if answer.get("decision_sentence") else "")
              + (f" · {answer['unlike_training_data_sentence']}" if answer.get("unlike_training_data") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
