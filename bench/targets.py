"""The targets the benchmarks are held to, and the table of measured value vs target.

Values are medians over rounds (or over paired steps) with their spread; results written before the
package split (bench/run.py of 1044e7b and earlier) hold plain numbers, the minimum over rounds, and
are read as such."""
from __future__ import annotations

from typing import Optional

TARGETS = {
    "probe_naive_over_ours": "naive/ours >= 0.8 x epochs",
    "probe_ours_over_floor": "ours/forward <= 1.3",
    "overhead": "engine/hand <= 1.10",
    "app": "app/engine <= 1.15",
    "time_estimate": "measured/estimate within 0.5-2 ('within about 2x')",
}


def med(x) -> Optional[float]:
    """The headline number of a value: a summary's median, or an old plain number."""
    if isinstance(x, dict):
        return x.get("median")
    return x


def spread(x) -> Optional[list]:
    if isinstance(x, dict) and x.get("n", 0) > 1:
        return [x.get("q1", x["min"]), x.get("q3", x["max"])] if "q1" in x else [x["min"], x["max"]]
    return None


def _probe(p: dict, add) -> None:
    t = p["target_naive_over_ours"]
    r, rc = p["ratio_naive_over_ours"], p["ratio_naive_over_ours_cpu"]
    add(f"probe: naive/ours ({p['settings']['epochs']} epochs)", r, f">= {t}", med(r) >= t, rc,
        f"naive without per-epoch validation: wall {med(p['ratio_naive_no_val_over_ours'])}, cpu "
        f"{med(p['ratio_naive_no_val_over_ours_cpu'])}; both at batch {p['settings'].get('naive_batch_size', '8 (val 32)')}")
    f = p["ratio_ours_over_forward"]
    add("probe: ours/one forward pass", f, "<= 1.3", med(f) <= 1.3, p["ratio_ours_over_forward_cpu"],
        f"each run against the floor measured inside it; median of per-batch ratios "
        f"{p.get('embedding_batch_ratio_median')}")


def _app(a: dict, add) -> None:
    if "ratio" not in a:
        add("app (gradio_client) / engine direct", None, "<= 1.15", None, None, a.get("skipped") or a.get("error", ""))
        return
    r = a["ratio"]
    around = f"app {med(a['app_outside_engine_s'])} s, direct {med(a['direct_outside_engine_s'])} s"
    inside = a.get("engine_in_app_over_direct", a.get("engine_in_app_over_direct_min"))
    add("app / engine, in one process (gradio_client)", r, "<= 1.15", med(r) <= 1.15, a.get("ratio_cpu"),
        f"vs train_run on a worker thread like the app's Runner; vs the main thread {med(a.get('ratio_vs_main_thread'))}"
        f"; the engine itself (RunStarted->RunFinished) inside the app vs direct: {med(inside)}; time around the "
        f"engine: {around} (ratio if the engine ran as fast in the app: {a.get('ratio_if_engine_equal')})")
    sp = a.get("separate_processes") or {}
    if "ratio" in sp:
        warm = "cold" in sp  # new format: warm server vs warmed CLI process
        add("app / CLI, each its own process" + (", both warm" if warm else " (deployment)"), sp["ratio"], "<= 1.15",
            med(sp["ratio"]) <= 1.15, None,
            (f"python app.py + gradio_client (request to result) vs `python -m tl_ui train --config run.json` in a "
             f"process that ran it once before; engine time alone {med(sp['ratio_engine'])}; cold (first run of a "
             f"fresh server vs a fresh CLI process): {sp['cold']['ratio']}") if warm else
            (f"warm server's whole request vs a fresh CLI process's engine time (not warmed); engine time alone "
             f"{med(sp['ratio_engine'])}"))


def _claims(c: dict, add) -> None:
    for key, t in (c.get("time_estimate") or {}).items():
        add(f"time estimate: {key}, measured/estimate", t["ratio"], "0.5-2", t["within_2x"], None,
            f"estimate {t['estimate_s']} s, measured {t['measured_s']} s ({t['n_examples']} examples, "
            f"{t['epochs']} epochs; epochs run {t['epochs_run']})")


def targets_table(results: dict) -> list[dict]:
    rows: list[dict] = []
    s = results.get("sections", {})

    def add(name, value, target, ok, cpu=None, note=""):
        rows.append({"measure": name, "value": med(value), "spread": spread(value), "cpu_value": med(cpu),
                     "target": target, "met": None if value is None or ok is None else bool(ok), "note": note})

    p = s.get("probe")
    if p and "ratio_naive_over_ours" in p:
        _probe(p, add)
    for key, o in (s.get("overhead") or {}).items():
        if isinstance(o, dict) and "ratio" in o:
            orders = o.get("ratio_by_order")
            add(f"engine overhead: {key} step, engine/hand", o.get("ratio_spread") and {**o["ratio_spread"], "median": o["ratio"]}
                or o["ratio"], "<= 1.10", o["ratio"] <= 1.10, o["ratio_cpu"],
                f"median of {o['settings']['counted_steps']} paired steps"
                + (f" (engine first {orders['engine_first']}, hand first {orders['hand_first']})" if orders else "")
                + f"; ratio of sums: wall {o['ratio_sum']}, cpu {o['ratio_sum_cpu']}")
    if s.get("app"):
        _app(s["app"], add)
    c = s.get("cold")
    if c and c.get("seconds"):
        heavy = [m for m, v in c.get("heavy_imported_before_page", {}).items() if v]
        add("cold start: python app.py -> HTTP 200 (s)", c["seconds"], "-", None, None,
            "imported before the page answered: " + (", ".join(heavy) or "no torch/transformers"))
    if s.get("claims") and "time_estimate" in s["claims"]:
        _claims(s["claims"], add)
    return rows
