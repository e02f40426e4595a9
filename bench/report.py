#!/usr/bin/env python
"""Write docs/benchmarks.md and tl_ui/core/measured_figures.json from the results files.

    python bench/report.py             # both files
    python bench/report.py --print     # the generated Markdown on stdout, nothing written

The page's hand-written text is everything above the MARKER line in docs/benchmarks.md (edit it
there); below it this script writes the figures the app quotes, the tables of the full run
(bench/results-full.json, with its partial re-runs) and of the latest quick run (bench/results.json).
tl_ui/core/measured_figures.json holds what the app's pages quote (`tl_ui.core.measured`), from the full-mode
claims section (`python bench/run.py --only claims`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report_tables as tables  # noqa: E402
from bench import report_setfit, report_text  # noqa: E402
from bench.harness import RESULTS, RESULTS_FULL, load_results, write_json  # noqa: E402
from bench.targets import targets_table  # noqa: E402

PAGE = ROOT / "docs" / "benchmarks.md"
FIGURES = ROOT / "tl_ui" / "core" / "measured_figures.json"
MARKER = "<!-- Everything below is written by bench/report.py from bench/results*.json: edit the text above. -->"
CLAIMS_COMMAND = "python bench/run.py --only claims"


def _machine_line(m: dict) -> str:
    return (f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('mem_total_gb')} GiB, Python {m.get('python')}, "
            f"torch {m.get('torch')} ({m.get('torch_default_threads')} threads by default), timm {m.get('timm')}, "
            f"transformers {m.get('transformers')}, peft {m.get('peft')}, gradio {m.get('gradio')}; load average at "
            f"start {m.get('load_avg_at_start')}, at the end {m.get('load_avg_now')} (shared machine).\n")


def _run_header(results: dict) -> list[str]:
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in (results.get("section_seconds") or {}).items())
    m = results.get("machine", {})
    waited = (f"; {results['waited_for_quiet_s']:.0f} s of it waiting for other processes to quiet down"
              if results.get("waited_for_quiet_s") else "")
    out = [f"Command: `{results.get('command')}` — started {results.get('started')}, took "
           f"{tables.fmt(results.get('total_seconds'), 0)} s ({secs}{waited}).\n", _machine_line(m)]
    if m.get("git_commit"):
        out.append(f"Code measured: {m['git_commit']}" + (f"; uncommitted then: {', '.join(m['git_uncommitted'])}"
                                                          if m.get("git_uncommitted") else "") + ".\n")
    for rr in results.get("reruns", []):
        took = f", {rr['seconds']:.0f} s" if rr.get("seconds") else ""
        took += f" of which {rr['waited_for_quiet_s']:.0f} s waiting for a quiet machine" if rr.get("waited_for_quiet_s") else ""
        out.append(f"Re-run since: `{rr['command']}` at {rr['started']} (code {rr.get('git_commit', '?')}{took})"
                   + (f" — {rr['why']}" if rr.get("why") else "") + ".\n")
    return out


def render_run(results: dict, title: str) -> list[str]:
    results = {**results, "targets": targets_table(results)}  # always with the current targets code
    return [f"## {title}\n"] + _run_header(results) + ["### Targets\n"] + tables.targets(results) + tables.sections(results)


def claims_source(full: dict) -> tuple[dict, dict] | None:
    """(the claims section, the run that measured it: command, time, machine) from the full results."""
    c = (full.get("sections") or {}).get("claims")
    if not c or "text_sample" not in c:
        return None
    run = next((r for r in reversed(full.get("reruns", [])) if "claims" in r.get("sections", [])),
               {**full.get("machine", {}), "command": full.get("command"), "started": full.get("started")})
    return c, run


def figures(c: dict, run: dict) -> dict:
    """The small JSON the app reads (tl_ui.core.measured): only measured numbers, with their spread."""
    text = {k: {"mean": v["mean"], "sd": v["sd"], "seeds": v["n"]} for k, v in c["text_sample"].items()
            if v.get("mean") is not None}
    return {
        "measured_on": f"{run.get('started')}, {run.get('cpu')} ({run.get('cores')} cores), code {run.get('git_commit')}",
        "command": CLAIMS_COMMAND,
        "source": "docs/benchmarks.md, section 8",
        "text_sample": text,
        "text_sample_design": c["settings"]["text_data"] + "; held-out accuracy at the app's defaults",
        "text_lora_minus_probe": {k: c["text_lora_minus_probe"].get(k) for k in ("mean", "sd", "n")},
        "time_estimate": {k: {"estimate_s": t["estimate_s"], "measured_s": t["measured_s"], "ratio": t["ratio"],
                              "within_2x": t["within_2x"], "n_examples": t["n_examples"], "runs": t.get("runs_used", 1),
                              "machine_busy": t.get("machine_busy", False)}
                          for k, t in c["time_estimate"].items()},
    }


def render_generated(full: dict, quick: dict) -> str:
    out = [MARKER, ""]
    src = claims_source(full)
    if src:
        c, run = src
        out += ["## The figures the app quotes\n",
                f"Measured by `{CLAIMS_COMMAND}` at {run.get('started')} (code {run.get('git_commit')}); "
                "`bench/report.py` copies them to `tl_ui/core/measured_figures.json`, which the app reads through "
                "`tl_ui.core.measured`. Details in section 8 below.\n"]
        for k, v in c["text_sample"].items():
            out.append(f"* sample reviews, {tables.NAMES.get(k, k)}: {v['mean']:.1%} ± {v['sd']:.1%} held-out accuracy "
                       f"({v['n']} seeds)")
        out += [f"* time estimate {k}: measured/estimate {t['ratio']}" + ("" if t["within_2x"] else " — **not within 2x**")
                for k, t in c["time_estimate"].items()] + [""]
    out += report_text.render(report_text.load())
    out += report_setfit.render(report_setfit.load())
    if full:
        out += render_run(full, "Latest full run")
    if quick and quick.get("mode") == "quick":
        out += ["", "## Latest quick run\n"] + _run_header(quick) + ["### Targets\n"] + tables.targets(
            {**quick, "targets": targets_table(quick)})
        out += ["<details><summary>All tables of the quick run</summary>\n"] + tables.sections(quick) + ["</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--print", action="store_true", help="print the generated part only; write nothing")
    args = parser.parse_args(argv)
    full, quick = load_results(RESULTS_FULL), load_results(RESULTS)
    generated = render_generated(full, quick)
    if args.print:
        print(generated)
        return 0
    text = PAGE.read_text(encoding="utf-8") if PAGE.exists() else "# Benchmarks\n\n"
    head = text.split(MARKER)[0] if MARKER in text else text.split("\n## Latest full run")[0]
    PAGE.write_text(head.rstrip() + "\n\n" + generated, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    src = claims_source(full)
    text_default = report_text.figures(report_text.load())
    if src or text_default:
        write_json(FIGURES, {**(figures(*src) if src else load_results(FIGURES)), **text_default})
        print(f"wrote {FIGURES.relative_to(ROOT)}")
    else:
        print(f"no claims section in {RESULTS_FULL.name}: run `{CLAIMS_COMMAND}` first; {FIGURES.name} left as it is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
