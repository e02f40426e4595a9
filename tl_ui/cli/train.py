"""`python -m tl_ui train`: one run from flags (or a replayed run.json) to a run folder.

Its setting flags are made from RunConfig's fields (tl_ui/core/config.py): every setting the page has
is a flag, named after the field (`--lora-rank` for `lora_rank`, or the field's own `flag`:
`--model`, `--data`), with the field's description as its help text. The other flags say what
to do with the run (`--config`, `--continue-from`, `--out`, `--quiet`).
"""
from __future__ import annotations

import argparse
import json
import sys
import typing
from typing import Any

from tl_ui.core.config import OPTION_NAMES, STRATEGY_HELP, RunConfig
from tl_ui.contracts import RunState
from tl_ui.contracts.events import EpochEnd, RunFailed, RunStarted, RunStopped

# The RunConfig fields that are flags: every option a person sets, and the data to train on.
FLAG_FIELDS = tuple(name for name in RunConfig.model_fields if name in OPTION_NAMES | {"data_path"})
SUMMARY_KEYS = ("accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "n_val", "best_epoch", "cross_validation",
                "calibration", "conformal", "evaluation", "scratch_run", "pretraining_gain", "groups", "micro_f1",
                "micro_f1_ci", "operating_point")


def field_flag(name: str) -> str:
    """The flag of a RunConfig field."""
    extra = RunConfig.model_fields[name].json_schema_extra or {}
    return extra.get("flag") or "--" + name.replace("_", "-")


def _value_type(annotation: Any) -> type:
    """int, float, bool or str: the field's type without Optional."""
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    kind = kinds[0]
    return kind if kind in (int, float, bool, str) else str


def add_field_flag(parser: argparse.ArgumentParser, name: str) -> None:
    field = RunConfig.model_fields[name]
    kind = _value_type(field.annotation)
    shown = field.default if field.default not in (None, "") else None
    says_default = "default" in field.description
    help_text = field.description + (f" (default: {shown})" if shown is not None and not says_default
                                     and kind is not bool else "")
    if kind is bool:   # --augment / --no-augment: a flag not given leaves the setting (or --config's) alone
        parser.add_argument(field_flag(name), dest=name, action=argparse.BooleanOptionalAction, default=None,
                            help=help_text + f" (default: {'on' if field.default else 'off'})")
        return
    choices = [c for c in ((field.json_schema_extra or {}).get("enum") or []) if c is not None] or None
    parser.add_argument(field_flag(name), dest=name, type=kind, choices=choices, default=None, help=help_text,
                        metavar=None if choices else name.upper())


def add_train_parser(commands) -> argparse.ArgumentParser:
    train = commands.add_parser("train", help="train a model and write a run folder",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(f"{k}: {v}" for k, v in STRATEGY_HELP.items()))
    train.add_argument("--config", help="a run.json to replay (other options override it)")
    for name in FLAG_FIELDS:
        add_field_flag(train, name)
    train.add_argument("--continue-from", metavar="RUN_DIR",
                       help="train this finished run --epochs more epochs from its best weights, same recipe and "
                            "data (--out must lie in the same folder as RUN_DIR)")
    train.add_argument("--out", required=True, help="run folder to write")
    train.add_argument("--quiet", action="store_true", help="print only the final JSON")
    train.set_defaults(handler=train_command)
    return train


def train_command(args) -> int:
    from tl_ui.service.headless import continue_headless, train_headless
    from tl_ui.service.errors import UserError

    options = {name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name) is not None}

    def show(event):
        if args.quiet:
            return
        if isinstance(event, EpochEnd):
            print(f"epoch {event.epoch}/{event.epochs}  train loss {event.train_loss:.4f}  val loss "
                  f"{event.val_loss:.4f}  val acc {event.val_accuracy:.3f}", file=sys.stderr)
        elif isinstance(event, (RunStarted, RunFailed, RunStopped)):
            print(f"{event.kind}: {getattr(event, 'message', '') or event.to_dict()}", file=sys.stderr)

    try:
        if args.continue_from:
            result = continue_headless(args.continue_from, args.epochs, args.out, on_event=show)
        else:
            result = train_headless(options, args.out, replay_of=args.config, on_event=show)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.status == RunState.FAILED:
        print(f"error: {result.message}", file=sys.stderr)
        return 2 if "unexpectedly" not in result.message else 1
    print(json.dumps({"run_id": result.run_id, "run_dir": str(result.run_dir), "status": str(result.status),
                      "metrics": {k: result.metrics.get(k) for k in SUMMARY_KEYS if k in result.metrics}
                      if result.metrics else None}, indent=2))
    return 0 if result.status == RunState.FINISHED else 1
