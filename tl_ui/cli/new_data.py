"""`python -m tl_ui validate` and `python -m tl_ui predict --data` (issue 34), in this process, through the
same engine functions the inference worker runs for the page and the API
(tl_ui/engine/inference/validation.py, batch.py), with the same data readers and upload limits."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from tl_ui.core.folders import scratch_for_this_process


def add_validate_parser(commands) -> None:
    validate = commands.add_parser(
        "validate", help="check a finished run on new labelled data (another site), without retraining")
    validate.add_argument("--run", required=True, help="the finished run's folder")
    validate.add_argument("--data", required=True, help="labelled data in any format the Data step reads "
                                                       "(zip/folder of class folders, CSV/TSV/XLSX)")
    validate.add_argument("--out", help="where validation.json and validation_predictions.csv go "
                                        "(default: a new folder under the run's validation/)")
    validate.add_argument("--json", action="store_true", help="print validation.json")
    validate.add_argument("--recalibrate", action="store_true",
                          help="also refit the temperature, prediction-set thresholds and decision threshold on a "
                               "random half of these data, check them on the other half, and save the result as a "
                               "new run beside --run (sharing its weights)")
    validate.add_argument("--site", help="the new site's name, recorded with the recalibrated run (default: the "
                                         "data file's name)")
    validate.add_argument("--seed", type=int, default=0, help="the random half's seed (default 0)")
    for flag in ("text-column", "label-column", "path-column", "group-column"):
        validate.add_argument(f"--{flag}", help=f"the table's {flag.split('-')[0]} column (default: detected)")
    validate.set_defaults(handler=run_validate)


def _limits():
    from tl_ui.core.settings import load_settings

    return load_settings([]).limits()   # TL_* variables: the server's upload limits


def run_validate(args) -> int:
    from tl_ui.data import DataError, load_dataset
    from tl_ui.engine import PredictError
    from tl_ui.engine.inference.validation import validate_run
    from tl_ui.service.workspace import data_sha256

    columns = {k: getattr(args, k) for k in ("text_column", "label_column", "path_column", "group_column")}
    try:
        if not Path(args.run, "model").is_dir():
            raise PredictError(f"'{args.run}' has no finished model. Point --run at a run that finished.")
        dataset = load_dataset(args.data, scratch_for_this_process("tl-cli-validate-"), limits=_limits(), **columns)
        sha = data_sha256(Path(args.data))
        report = validate_run(args.run, dataset, data_sha256=sha, out_dir=args.out, on_progress=_progress(args.json))
        if args.recalibrate:
            report["recalibration"] = _recalibrate(args, dataset, sha)
    except (DataError, PredictError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(summary(report))
    return 0


def _recalibrate(args, dataset, sha: str) -> dict:
    """The recalibrated version: a new run folder beside --run (the same runs folder)."""
    from tl_ui.engine.inference.recalibration import recalibrate_run
    from tl_ui.service.workspace import new_run_id

    parent = Path(args.run).resolve()
    return recalibrate_run(parent, dataset, parent.parent / new_run_id(), site=args.site or Path(args.data).stem,
                           data_sha256=sha, seed=args.seed, on_progress=_progress(args.json))


def summary(report: dict) -> str:
    """Side by side, in words: the run's own test examples and the new data."""
    internal, difference = report.get("internal") or {}, report.get("difference") or {}

    def pct(value, ci) -> str:
        if value is None:
            return "—"
        return f"{value:.1%}" + (f" ({ci[0]:.1%}–{ci[1]:.1%})" if ci else "")

    lines = [f"{'':22s}{'own test examples':>28s}{'new data':>28s}",
             f"{'examples':22s}{internal.get('n', 0):>28d}{report['n']:>28d}",
             f"{'accuracy':22s}{pct(internal.get('accuracy'), internal.get('accuracy_ci')):>28s}"
             f"{pct(report.get('accuracy'), report.get('accuracy_ci')):>28s}",
             f"{'macro-F1':22s}{pct(internal.get('macro_f1'), internal.get('macro_f1_ci')):>28s}"
             f"{pct(report.get('macro_f1'), report.get('macro_f1_ci')):>28s}",
             f"{'ECE (calibration)':22s}{pct(internal.get('ece'), internal.get('ece_ci')):>28s}"
             f"{pct(report['calibration'].get('ece'), report['calibration'].get('ece_ci')):>28s}",
             f"{'set coverage':22s}{pct(internal.get('coverage'), internal.get('coverage_ci')):>28s}"
             f"{pct(report['conformal'].get('coverage'), report['conformal'].get('coverage_ci')):>28s}",
             "", difference.get("sentence", "")]
    if report["familiarity"].get("sentence"):
        lines.append(report["familiarity"]["sentence"])
    lines += report.get("sentences") or []
    if report.get("folder"):
        lines.append(f"Written to {report['folder']}")
    recalibrated = report.get("recalibration")
    if recalibrated:
        lines += ["", recalibrated["recalibration"]["sentence"],
                  f"Saved as run {recalibrated['run_id']} (recalibrated for {recalibrated['site']} from "
                  f"{recalibrated['parent_run_id']}): {recalibrated['run_dir']}"]
    return "\n".join(line for line in lines if line is not None)


def _progress(quiet: bool):
    def show(done: int, total: int, message: str) -> None:
        if not quiet and sys.stderr.isatty():
            print(f"\r{message}", end="" if done < total else "\n", file=sys.stderr, flush=True)
    return show


def predict_batch(args) -> int:
    """`predict --run DIR --data folder_or_table --out predictions.csv`: every input, one row each."""
    from tl_ui.data import DataError
    from tl_ui.data.unlabelled import load_inputs
    from tl_ui.engine import PredictError, Predictor
    from tl_ui.engine.inference.batch import score_to_csv

    if not args.out:
        print("error: say where the table goes: --out predictions.csv", file=sys.stderr)
        return 2
    try:
        inputs = load_inputs(args.data, scratch_for_this_process("tl-cli-batch-"), limits=_limits(),
                             text_column=args.text_column, path_column=args.path_column)
        predictor = Predictor.load(args.run)
        if inputs.modality != predictor.modality:
            raise PredictError(f"This run's model reads {predictor.modality}s, but the inputs are {inputs.modality}s.")
        written = score_to_csv(predictor, inputs.items, inputs.names, args.out, level=args.level,
                               on_progress=_progress(False), xlsx=args.xlsx)
    except (DataError, PredictError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in inputs.warnings:
        print(f"note: {warning}", file=sys.stderr)
    print(json.dumps(written) if args.json else
          f"{written['n']} inputs scored, {written['n_flagged']} look unlike the training data: {written['csv']}")
    return 0
