"""The "SetFit against the probe" tables of docs/benchmarks.md, from bench/setfit-results.json
(`python -m bench.sections.setfit_check`, issue 32 item 3)."""
from __future__ import annotations

from bench.sections.setfit_check import RESULTS

NAMES = {"probe": "linear probe", "setfit_paper": "SetFit, 20 iterations per text", "setfit_app": "SetFit, the app's bound"}


def load() -> dict:
    from bench.harness import load_results

    return load_results(RESULTS) if RESULTS.exists() else {}


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _ci(ci) -> str:
    return f"{100 * ci[0]:.0f}–{100 * ci[1]:.0f}%"


def render_sizes(part: dict) -> list[str]:
    took = f"{part['seconds']:.0f} s" if part.get("seconds") else "still running or cut short"
    out = [f"Command: `{part['command']}` ({part['started']}, {took}; torch threads "
           f"{(part.get('machine') or {}).get('torch_default_threads')}, load average at the start "
           f"{(part.get('machine') or {}).get('load_avg_at_start')}).\n",
           "| set | n | method | accuracy (pooled, 95% Wilson) | per seed | pairs | s per fit (mean) | encoder moved: largest weight change, change of all weights / their norm | other processes' CPU share |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, d in part.get("datasets", {}).items():
        for n, row in d.get("sizes", {}).items():
            for method, c in row.items():
                runs = c.get("runs", [])
                pairs = ", ".join(sorted({str(r["pairs"]) for r in runs if "pairs" in r})) or "–"
                moved = (f"{c['shift_max_abs']:.1e}, {c['shift_relative']['mean']:.1e}" if "shift_max_abs" in c else "–")
                shares = [r["others_share"] for r in runs if r.get("others_share") is not None]
                out.append(f"| {name} | {n} | {NAMES.get(method, method)} | {_pct(c['accuracy'])} [{_ci(c['ci'])}] on "
                           f"{c['seeds']}×{c['test_per_seed']} | {', '.join(f'{100 * a:.1f}' for a in c['per_seed'])} | "
                           f"{pairs} | {c['seconds']['mean']:.1f} | {moved} | "
                           f"{', '.join(f'{s:.0%}' for s in shares) or '–'} |")
    return out + [""]


def render_issue(part: dict) -> list[str]:
    out = [f"Command: `{part['command']}` ({part['started']}, {part.get('seconds') or '?'} s; SETFIT_MAX_PAIRS "
           f"{part.get('setfit_max_pairs')}).\n",
           "| seed | strategy | held-out accuracy (336 reviews) | shown first on the Results page | covers | head-only CV of the tuned encoder (shown before this fix) | covers | encoder moved (largest weight change) | run wall s | other processes' CPU share |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in part.get("runs", []):
        shown = r["shown"]
        head = r.get("head_only_cv")
        out.append(f"| {r['seed']} | {r['strategy']} | {_pct(r['heldout_accuracy'])} | {shown['which']}: "
                   f"{_pct(shown['accuracy'])} [{_ci(shown['ci'])}] | {'yes' if r['covers'] else '**no**'} | "
                   + (f"{_pct(head['accuracy'])} [{_ci(head['ci'])}] | {'yes' if r['head_only_cv_covers'] else '**no**'} | "
                      f"{r['encoder_shift']['max_abs']:.1e}" if head else "– | – | –")
                   + f" | {r['wall_s']:.0f} | {'–' if r.get('others_share') is None else format(r['others_share'], '.0%')} |")
    return out + [""]


def render_cv(part: dict) -> list[str]:
    out = [f"Command: `{part['command']}` ({part['started']}).\n",
           "| seed | folds | CV accuracy (whole recipe) | held-out accuracy | s per fold | s for all folds |",
           "|---|---|---|---|---|---|"]
    for r in part.get("runs", []):
        out.append(f"| {r['seed']} | {part['folds']}×1 | {_pct(r['cv_accuracy'])} | {_pct(r['heldout_accuracy'])} | "
                   f"{r['seconds_per_fold']['mean']:.0f} | {r['seconds_all_folds']:.0f} |")
    return out + [""]


def render(r: dict) -> list[str]:
    if not r:
        return []
    out = ["## SetFit against the probe (issue 32)\n"]
    for key, title, fn in (("issue", "The issue's measurement: 64 reviews, the CLI, the exported model on the rest",
                            render_issue),
                           ("sizes", "Held-out accuracy at 16 to 200 texts, the same draws and test texts for every method",
                            render_sizes),
                           ("whole_recipe_cv", "What a whole-recipe CV of SetFit costs", render_cv)):
        if r.get(key):
            out += [f"**{title}**\n"] + fn(r[key])
    return out
