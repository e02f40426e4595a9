"""`python -m tl_ui advise --data PATH [--json]`: which offline model suits this dataset, before training.

Runs the advisor in this process (a command line has no web server to protect). `--json` prints a
list of {model_id, knn_accuracy, knn_accuracy_ci, logme, seconds, ...} best first (the contract;
extra keys may follow)."""
from __future__ import annotations

import argparse
import json
import sys

EXIT_BAD_INPUT = 2
CONTRACT_KEYS = ("model_id", "knn_accuracy", "knn_accuracy_ci", "logme", "seconds")


def add_advise_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "advise", help="rank the offline models for a dataset before training",
        description="Embed the dataset once with every offline model of its kind and rank them by "
                    "cross-validated kNN accuracy on the frozen features (with its 95%% interval), LogME "
                    "beside it. Higher is better for both.")
    parser.add_argument("--data", required=True, help="zip of class folders, folder, CSV/TSV/XLSX")
    parser.add_argument("--json", action="store_true", help="print JSON: a list of models, best first")
    parser.add_argument("--models", help="comma-separated shelf ids to compare (default: every offline model)")
    parser.add_argument("--image-size", type=int, help="images: side in pixels (default: each model's own)")
    parser.add_argument("--max-examples", type=int, help="rank on a stratified sample of at most this many "
                                                         "examples (default: TL_ADVISOR_MAX_EXAMPLES, 1000)")
    parser.add_argument("--text-column", help="table column holding the texts (default: detected)")
    parser.add_argument("--label-column", help="table column holding the labels (default: detected)")
    parser.set_defaults(handler=advise_command)
    return parser


def advise_command(args: argparse.Namespace) -> int:
    from tl_ui.core.catalog import ModelUnavailable, get_model
    from tl_ui.core.config import ConfigError, RunConfig
    from tl_ui.service.headless import read_dataset
    from tl_ui.service.errors import UserError
    from tl_ui.core.settings import load_settings

    settings = load_settings([])
    try:
        dataset = read_dataset(args.data, {"text_column": args.text_column, "label_column": args.label_column},
                               settings.limits_record())
        config = settings.run_limits().check(RunConfig.from_options(
            {"image_size": args.image_size, "strategy": "linear_probe"}, modality=dataset.modality))
        models = None
        if args.models:
            models = [get_model(m.strip(), dataset.modality) for m in args.models.split(",") if m.strip()]
            wrong = [m.id for m in models if m.modality != dataset.modality]
            if wrong:
                raise UserError(f"These models do not read {dataset.modality}s: {', '.join(wrong)}.")
        from tl_ui.engine.advisor.ranking import advise

        shown: set[int] = set()

        def progress(number: int, total: int, message: str) -> None:
            if not args.json and number not in shown:   # one line per model
                shown.add(number)
                print(f"[{number}/{total}] {message}", file=sys.stderr)

        rows = advise(dataset, base_config=config, models=models,
                      max_examples=args.max_examples or settings.advisor_max_examples, on_progress=progress)
    except (UserError, ConfigError, ModelUnavailable, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps([{**{k: row.get(k) for k in CONTRACT_KEYS}, **row} for row in rows], indent=2))
        return 0
    print(format_table(rows))
    return 0


def format_table(rows: list[dict]) -> str:
    from tl_ui.engine.advisor.ranking import MEANING

    lines = [f"{'model':22s} {'kNN accuracy (95% interval)':30s} {'LogME':>8s} {'seconds':>8s} {'size':>7s}"]
    for row in rows:
        if row.get("knn_accuracy") is None:
            lines.append(f"{row['model_id']:22s} could not be scored: {row.get('error', '')}")
            continue
        low, high = row["knn_accuracy_ci"]
        lines.append(f"{row['model_id']:22s} {row['knn_accuracy']:.3f} ({low:.3f}-{high:.3f}){'':13s} "
                     f"{row['logme']:8.3f} {row['seconds']:8.1f} {row['params_m']:6.1f}M")
    return "\n".join(lines + ["", MEANING])
