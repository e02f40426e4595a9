"""Headless command line: `python -m tl_ui {models,check-data,train,predict,explain,advise}`.

Exit status: 0 success, 1 a run that failed or was stopped, 2 bad arguments or bad data.
Messages for people go to stderr without tracebacks; JSON goes to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tl_ui.config import SET_LEVELS, STRATEGIES, STRATEGY_HELP


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    parser = argparse.ArgumentParser(prog="python -m tl_ui", description="Transfer Lab, headless.")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the model shelf")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument("--modality", choices=["image", "text"])
    models.set_defaults(handler=_models)

    from tl_ui.cli_data import add_check_data_parser
    add_check_data_parser(commands)

    train = commands.add_parser("train", help="train a model and write a run folder",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(f"{k}: {v}" for k, v in STRATEGY_HELP.items()))
    train.add_argument("--config", help="a run.json to replay (other options override it)")
    train.add_argument("--data", help="zip of class folders, folder, CSV/TSV/XLSX")
    train.add_argument("--model", help="shelf id or Hugging Face Hub id (see `models`)")
    train.add_argument("--strategy", choices=STRATEGIES, help="default: linear_probe for images; for texts the "
                       "benchmark's best for their number (docs/benchmarks.md)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--image-size", type=int)
    train.add_argument("--max-examples", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--random-init", action="store_true", default=None,
                       help="scratch baseline: random initial weights")
    train.add_argument("--compare-scratch", action="store_true", default=None,
                       help="also train the same recipe from random weights (into OUT-scratch) and report the "
                            "difference pretraining makes")
    train.add_argument("--text-column", help="table column holding the texts (default: detected)")
    train.add_argument("--label-column", help="table column holding the labels (default: detected)")
    train.add_argument("--label-columns", help="multi-label: several 0/1 columns, one per label (a,b,c)")
    train.add_argument("--label-separator", help="multi-label: ';' or '|' between labels in the label column "
                                                 "(default: detected; 'none': one label per row)")
    train.add_argument("--group-column", help="table column naming each example's group (site, scanner, ...): "
                                              "per-group metrics")
    train.add_argument("--set-level", type=float, choices=SET_LEVELS,
                       help="prediction sets hold the right class this often (default 0.9)")
    train.add_argument("--continue-from", metavar="RUN_DIR",
                       help="train this finished run --epochs more epochs from its best weights, same recipe and "
                            "data (--out must lie in the same folder as RUN_DIR)")
    train.add_argument("--out", required=True, help="run folder to write")
    train.add_argument("--quiet", action="store_true", help="print only the final JSON")
    train.set_defaults(handler=_train)

    predict = commands.add_parser("predict", help="predict with a trained run")
    predict.add_argument("--run", required=True, help="run folder (or its model/ folder)")
    predict.add_argument("inputs", nargs="+", help="image files, or texts")
    predict.add_argument("--json", action="store_true",
                         help="print JSON: {probabilities, prediction_set, set_level, unlike_training_data (true/false; "
                         "null for runs without the reference), unlike_training_data_score, "
                         "unlike_training_data_threshold} (a list for several inputs)")
    predict.add_argument("--level", type=float, choices=SET_LEVELS, help="prediction-set level (default: the run's)")
    predict.set_defaults(handler=_predict)

    from tl_ui.cli_explain import add_explain_parser
    add_explain_parser(commands)

    from tl_ui.cli_advise import add_advise_parser
    add_advise_parser(commands)

    hashing = commands.add_parser("hash-password", help="print a password hash for a TL_AUTH_FILE line")
    hashing.add_argument("user", nargs="?", help="user name: prints 'user:hash' (else the hash alone)")
    hashing.set_defaults(handler=_hash_password)

    args = parser.parse_args(argv)
    return args.handler(args)


def _hash_password(args) -> int:
    """Reads the password from the terminal (not echoed) or from standard input, never from a flag."""
    import getpass

    from tl_ui.auth import hash_password

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not password:
        print("error: the password is empty.", file=sys.stderr)
        return 2
    hashed = hash_password(password)
    print(f"{args.user}:{hashed}" if args.user else hashed)
    return 0


def _models(args) -> int:
    from tl_ui.catalog import list_models

    entries = list_models(args.modality)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    for e in entries:
        badge = "offline" if e.offline else "needs network"
        print(f"{e.id:20s} {e.modality:5s} {e.params_m:6.1f}M  {badge:13s} {e.display_name}")
    return 0


_TRAIN_OPTIONS = {"data": "data_path", "model": "model_id", "strategy": "strategy", "epochs": "epochs",
                  "learning_rate": "learning_rate", "batch_size": "batch_size", "image_size": "image_size",
                  "max_examples": "max_examples", "seed": "seed", "random_init": "random_init",
                  "compare_scratch": "compare_scratch", "text_column": "text_column",
                  "label_column": "label_column", "group_column": "group_column", "set_level": "set_level",
                  "label_columns": "label_columns", "label_separator": "label_separator"}


def _train(args) -> int:
    from tl_ui.service.headless import continue_headless, train_headless
    from tl_ui.service.lab import UserError

    options = {field: getattr(args, arg) for arg, field in _TRAIN_OPTIONS.items() if getattr(args, arg) is not None}

    def show(event):
        if args.quiet:
            return
        if event.kind == "epoch":
            print(f"epoch {event.epoch}/{event.epochs}  train loss {event.train_loss:.4f}  val loss "
                  f"{event.val_loss:.4f}  val acc {event.val_accuracy:.3f}", file=sys.stderr)
        elif event.kind in ("started", "failed", "stopped"):
            print(f"{event.kind}: {getattr(event, 'message', '') or event.to_dict()}", file=sys.stderr)

    try:
        if args.continue_from:
            result = continue_headless(args.continue_from, args.epochs, args.out, on_event=show)
        else:
            result = train_headless(options, args.out, replay_of=args.config, on_event=show)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.status == "failed":
        print(f"error: {result.message}", file=sys.stderr)
        return 2 if "unexpectedly" not in result.message else 1
    keys = ("accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "n_val", "best_epoch", "cross_validation",
            "calibration", "conformal", "evaluation", "scratch_run", "pretraining_gain", "groups", "micro_f1", "micro_f1_ci")
    print(json.dumps({"run_id": result.run_id, "run_dir": str(result.run_dir), "status": result.status,
                      "metrics": {k: result.metrics.get(k) for k in keys if k in result.metrics}
                      if result.metrics else None}, indent=2))
    return 0 if result.status == "finished" else 1


def _predict(args) -> int:
    from tl_ui.engine import PredictError, Predictor

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
        keep = ("probabilities", "prediction_set", "set_level",
                "unlike_training_data", "unlike_training_data_score", "unlike_training_data_threshold")
        shown = [{k: a[k] for k in keep + ("labels", "thresholds") if k in a} for a in answers]   # multi-label: labels
        print(json.dumps(shown[0] if len(shown) == 1 else shown, indent=2))
        return 0
    for item, answer in zip(args.inputs, answers):
        top, p = next(iter(answer["probabilities"].items()))
        print(f"{item}: {top} ({p:.0%})" + (f" · {answer['set_sentence']}" if answer.get("set_sentence") else "")
              + (f" · {answer['unlike_training_data_sentence']}" if answer.get("unlike_training_data") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
