"""The "Text with 16 to 300 examples" part of docs/benchmarks.md and the text default the app
preselects by (tl_ui/core/measured_figures.json, key "text_default"), from bench/text-small-n-results.json
(`python -m bench.sections.text_small_n`)."""
from __future__ import annotations

from bench.sections.text_small_n import METHODS, RESULTS, TIE

NAMES = {"sklearn": "scikit-learn LR", "probe": "our probe", "setfit": "SetFit", "lora": "LoRA", "full": "full"}


def load() -> dict:
    from bench.harness import load_results

    return load_results(RESULTS) if RESULTS.exists() else {}


def render(r: dict) -> list[str]:
    if not r.get("datasets"):
        return []
    s = r["settings"]
    slow = [NAMES[m] for m in ("setfit", "lora", "full") if m in s["slow"]]
    skipped = [NAMES[m] for m in ("setfit", "lora", "full") if m not in s["slow"]]
    load = (r.get("machine") or {}).get("load_avg_at_start")
    where = (f"2-core machine, load average {load[0]:.2f} at the start" if load else "2-core machine")
    out = ["## Text with 16 to 300 examples\n",
           f"Command: `{r['command']}` ({r['started']}, {r['seconds']:.0f} s on the {where}). MiniLM-L6, "
           f"texts cut at {s['max_length']} tokens. Each size: {s['repeats']} stratified draws of n training "
           f"examples, the test examples drawn from the rest (at most {s['test_cap']}); every method sees all n "
           f"examples. {', '.join(slow)} (SetFit: {s['setfit_pairs']} pairs; LoRA and full: the app's defaults, "
           f"fixed epochs) ran on the first {s['slow_repeats']} draw(s) at n = {', '.join(map(str, s['slow_sizes']))} "
           f"of {', '.join(s['slow_datasets'])}"
           + (f"; {' and '.join(skipped)} not run in this pass" if skipped else "") +
           ". Accuracy pooled over draws, 95% Wilson interval; time: median seconds per fit "
           "(the linear methods share one embedding pass, listed per data set).\n"]
    for note in (r.get("notes") or {}).values():
        out.append(f"* {note}")
    for k, rr in enumerate(r.get("reruns") or []):
        out.append(f"* Re-run{' †' * (k + 1)}: {', '.join(NAMES[m] for m in rr['methods'])} at n = "
                   f"{', '.join(map(str, rr['sizes']))} on the same draws (`{rr['command']}`, {rr['started']}, "
                   f"{rr['seconds']:.0f} s; SetFit: at most {rr['setfit_pairs']} pairs, 2 × 20 per text below that); "
                   f"the cells marked{' †' * (k + 1)} replace the earlier ones.")
    for name, d in r["datasets"].items():
        out += [f"\n**{d['description']}** ({d['n_texts']} texts; embedding them all: {d['embed_all_s']} s)\n",
                "| n | " + " | ".join(NAMES[m] for m in METHODS) + " |", "|---" * (len(METHODS) + 1) + "|"]
        for n, row in d["sizes"].items():
            cells = []
            for m in METHODS:
                c = row.get(m)
                mark = "" if not c or c.get("rerun") is None else " " + "†" * (c["rerun"] + 1)
                cells.append("–" if not c else f"{c['accuracy']:.3f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}] "
                                               f"×{c['draws']}, {c['median_s']:.1f} s{mark}")
            out.append(f"| {n} | " + " | ".join(cells) + " |")
    out += ["\n**The text default, by number of examples** (on the draws every method at that size shared: the "
            f"cheapest app strategy within {TIE:.2f} of the best method measured, scikit-learn included; gap: to "
            "the better of scikit-learn and SetFit on the same draws):\n", "| n | preselected | accuracy | reference | gap | compared on |",
            "|---|---|---|---|---|---|"]
    for n, p in (r.get("default") or {}).items():
        out.append(f"| {n} | {p['strategy']} | {p['accuracy']:.3f} | {p['reference']:.3f} | {p['gap']:+.3f} | "
                   f"{p['compared_on']} |")
    return out + [""]


def figures(r: dict) -> dict:
    """What tl_ui.core.measured.text_default reads."""
    if not r.get("default"):
        return {}
    return {"text_default": {"command": r["command"], "measured_on": r["started"],
                             "source": "docs/benchmarks.md, section “Text with 16 to 300 examples”",
                             "by_size": {n: {k: p[k] for k in ("method", "strategy", "accuracy", "all", "n_test") if k in p}
                                         for n, p in r["default"].items()}}}
