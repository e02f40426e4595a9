"""`python -m tl_ui export --format onnx`, `share` and `push` (issue 39): a finished run's model as ONNX files,
as a Gradio Space folder, or pushed to the Hugging Face Hub. The heavy work runs in this process through the
same engine functions the inference worker runs for the page (tl_ui/engine/inference/onnx_package.py)."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def add_share_parsers(commands) -> None:
    export = commands.add_parser("export", help="export a finished run's model (ONNX, with int8 if asked)")
    export.add_argument("--run", required=True, help="the finished run's folder")
    export.add_argument("--format", required=True, choices=["onnx"], help="the export format")
    export.add_argument("--int8", action="store_true", help="also an int8 model, measured on the test examples")
    export.add_argument("--out", required=True, help="the folder to write (replaced if it exists)")
    export.add_argument("--json", action="store_true", help="print onnx_report.json")
    export.set_defaults(handler=_export)

    share = commands.add_parser("share", help="write a Gradio Space folder for a finished run's model")
    share.add_argument("--run", required=True, help="the finished run's folder")
    share.add_argument("--out", required=True, help="the Space folder to write (replaced if it exists)")
    share.set_defaults(handler=_share)

    push = commands.add_parser("push", help="push a run's model (or, with --space, its Space) to the Hugging Face "
                                            "Hub, privately; needs HF_TOKEN and a network")
    push.add_argument("--run", required=True, help="the finished run's folder")
    push.add_argument("--repo", required=True, help="the repository, e.g. your-name/digits-classifier")
    push.add_argument("--space", action="store_true", help="push a Gradio Space (built here) instead of the model")
    push.set_defaults(handler=_push)


def _no_model(run: str) -> bool:
    if not (Path(run) / "model").is_dir():
        print(f"error: '{run}' has no finished model. Point --run at a run that finished.", file=sys.stderr)
        return True
    return False


def _progress(done: int, total: int, message: str) -> None:
    print(f"[{done}/{total}] {message}", file=sys.stderr, flush=True)


def _export(args) -> int:
    from tl_ui.engine.export.onnx_export import OnnxExportError
    from tl_ui.engine.inference.onnx_package import export_run_onnx

    if _no_model(args.run):
        return 2
    try:
        report = export_run_onnx(args.run, args.out, int8=args.int8, on_progress=_progress)
    except OnnxExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if report.get("parity_max_abs_diff") is not None:
        print(f"fp32: probabilities within {report['parity_max_abs_diff']:.1e} of the app's on {report['n_test']} "
              "test examples.")
    int8 = report.get("int8") or {}
    if int8.get("sentence") or int8.get("note"):
        print(int8.get("sentence") or f"int8: {int8['note']}")
    print(Path(args.out).resolve())
    return 0


def _share(args) -> int:
    from tl_ui.engine.export.onnx_export import OnnxExportError
    from tl_ui.engine.inference.onnx_package import build_space

    if _no_model(args.run):
        return 2
    try:
        folder = build_space(args.run, args.out, on_progress=_progress)
    except OnnxExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"A Space folder: {folder.resolve()} (try it: cd there, pip install -r requirements.txt, python app.py)")
    return 0


def _push(args) -> int:
    from tl_ui.service.hub_push import PushError, offline_reason, push_folder

    if _no_model(args.run):
        return 2
    reason = offline_reason()   # before anything is built: offline answers in seconds
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    try:
        if args.space:
            from tl_ui.engine.inference.onnx_package import build_space

            with tempfile.TemporaryDirectory(prefix="tl-space-") as scratch:
                folder = build_space(args.run, Path(scratch) / "space", on_progress=_progress)
                url = push_folder(folder, args.repo, space=True)
        else:
            url = push_folder(Path(args.run) / "model", args.repo, space=False)
    except PushError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(url)
    return 0
