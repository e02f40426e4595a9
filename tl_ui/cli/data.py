"""`python -m tl_ui check-data PATH`: load and check a dataset the way the app would."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile

from tl_ui.data import DataError, load_dataset

EXIT_BAD_DATA = 2


def add_check_data_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check-data",
        help="check a dataset (zip/folder of class folders, CSV/TSV/XLSX) and summarise it",
        description=(
            "Load a dataset exactly as the app would and report what was found: the kind of data, "
            "the number of examples per label and any warnings. Exits with status 2 and a plain "
            "message when the data cannot be used."
        ),
    )
    parser.add_argument("path", help="a .zip or folder of class folders, or a .csv/.tsv/.txt/.xlsx table")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--text-column", help="table column holding the texts (default: detected)")
    parser.add_argument("--label-column", help="table column holding the labels (default: detected)")
    parser.add_argument("--path-column", help="table column holding image file paths (default: detected)")
    parser.add_argument("--label-columns", help="multi-label: several 0/1 columns, one per label (a,b,c)")
    parser.add_argument("--label-separator", help="multi-label: ';' or '|' between labels (default: detected; "
                                                  "'none': one label per row)")
    parser.set_defaults(handler=check_data_command)
    return parser


def check_data_command(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="tl-check-data-") as workdir:
        try:
            dataset = load_dataset(
                args.path, workdir, limits=_settings_limits(), text_column=getattr(args, "text_column", None),
                label_column=getattr(args, "label_column", None),
                path_column=getattr(args, "path_column", None),
                label_columns=getattr(args, "label_columns", None),
                label_separator=getattr(args, "label_separator", None),
            )
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_DATA
        summary = dataset.summary()
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    kind = "images" if summary["modality"] == "image" else "texts"
    lines = [
        f"{summary['source']}: {summary['n_examples']} {kind}, {summary['n_classes']} labels",
        "",
    ]
    width = max(len(str(label)) for label in summary["classes"])
    for label, count in summary["classes"].items():
        lines.append(f"  {str(label):<{width}}  {count}")
    if summary.get("multilabel"):
        lines += ["", summary["multilabel"]["sentence"]]
        lines += [f"  together: {' + '.join(p['labels'])}  {p['n']}" for p in summary["multilabel"]["co_occurrence"][:8]]
    if summary["warnings"]:
        lines += ["", "Warnings:"]
        lines += [f"  - {warning}" for warning in summary["warnings"]]
    else:
        lines += ["", "No problems found."]
    return "\n".join(lines)


def _settings_limits():
    """The same data limits as the server's (TL_* variables), so check-data says what the app would."""
    from tl_ui.core.settings import load_settings

    return load_settings([]).limits()
