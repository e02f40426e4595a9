"""The summary printed at the end of `python bench/run.py`: the targets table and one line per section."""
from __future__ import annotations

from bench.targets import med, targets_table


def _fmt(x, n=2) -> str:
    x = med(x)
    return "-" if x is None else (f"{x:.{n}f}" if isinstance(x, float) else str(x))


def _spread(r: dict) -> str:
    return "" if not r.get("spread") else f" [{r['spread'][0]}-{r['spread'][1]}]"


def failed_sections(results: dict) -> dict[str, str]:
    """{section: its error} for the sections that stopped (a run they measured failed, or anything else)."""
    return {name: str(sec["error"]) for name, sec in (results.get("sections") or {}).items()
            if isinstance(sec, dict) and "error" in sec}


def print_report(results: dict, results_path) -> None:
    failed = failed_sections(results)
    # a failed section's numbers are not printed as figures: only its error, at the top and at the end
    s = {name: sec for name, sec in (results.get("sections") or {}).items() if name not in failed}
    m = results.get("machine", {})
    print("\n" + "=" * 104)
    print(f"Transfer Lab benchmarks ({results.get('mode')}) on {m.get('cpu')}, {m.get('cores')} cores, torch "
          f"{m.get('torch')}, python {m.get('python')}, load avg at start {m.get('load_avg_at_start')}")
    print("=" * 104)
    for name, error in failed.items():
        print(f"FAILED section {name}: {error}")
    print(f"{'measure':58} {'median [spread]':>22} {'cpu':>6}  {'target':>8}  met")
    for r in targets_table(results):
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        print(f"{r['measure']:58} {_fmt(r['value']) + _spread(r):>22} {_fmt(r['cpu_value']):>6}  {r['target']:>8}  {met}")
        if r["note"]:
            print(f"    {r['note']}")
    p = s.get("probe")
    if p and "ours_fit_s" in p:
        print(f"\nprobe ({p['settings']['n_images']} images, {p['settings']['epochs']} epochs, batch "
              f"{p['settings']['batch_size']}), median wall s: ours {_fmt(p['ours_fit_s'])} (embeddings "
              f"{_fmt(p['ours_embed_s'])}, head {_fmt(p['ours_head_s'])}) | naive {_fmt(p['naive_s'])} | one forward "
              f"{_fmt(p['forward_s'])}; decoding+transforms alone {p['data_pipeline_s']} s")
    for key, o in (s.get("overhead") or {}).items():
        if isinstance(o, dict) and "engine_s" in o:
            print(f"overhead {key} (n_train {o['settings']['n_train']}, {o['settings']['counted_steps']} steps), "
                  f"wall/cpu s: engine {o['engine_s']}/{o['engine_cpu_s']} vs hand {o['hand_s']}/{o['hand_cpu_s']}")
    a = s.get("app")
    if a and "app_wall_s" in a:
        print(f"app: median {_fmt(a['app_wall_s'])} s via gradio_client vs {_fmt(a['direct_wall_s'])} s direct")
    c = s.get("cold")
    if c and c.get("import_app"):
        top = ", ".join(f"{n} {t}s" for n, t in c["import_app"]["top_level"][:6])
        print(f"cold start s: {c['seconds']['all']} | import app {c['import_app']['total_s']} s: {top}")
    if s.get("memory"):
        print("peak RSS (MB) at default batch size: " + ", ".join(
            f"{k} {v['peak_rss_mb']}" for k, v in s["memory"].items() if isinstance(v, dict) and "peak_rss_mb" in v))
    acc = s.get("accuracy")
    if acc and "image" in acc:
        for note in acc.get("notes", []):
            print(f"NOTE: {note}")
        print("\nheld-out accuracy (mean ± sd over seeds) and wall seconds per run:")
        for modality in ("image", "text"):
            for strat, by_n in acc.get(modality, {}).items():
                if not isinstance(by_n, dict) or strat == "heldout_checks":
                    continue
                cells = [f"N={n}: {v['heldout_accuracy']['mean']:.3f}±{v['heldout_accuracy'].get('sd', v['heldout_accuracy'].get('std'))} "
                         f"({v['seconds']['mean']:.0f}s)" for n, v in by_n.items()]
                print(f"  {modality:5} {strat:14} " + " | ".join(cells))
    t = s.get("threads")
    for modality in ("image", "text"):
        for what, v in ((t or {}).get(modality) or {}).items():
            if what != "embedding_batch_size":
                print(f"threads {modality} {what}: 1 thread {v['per_s_1_thread']}/s, 2 threads {v['per_s_2_threads']}/s "
                      f"(x{_fmt(v['speedup_2_over_1'])})")
    cl = s.get("claims")
    if cl and "text_sample" in cl:
        print("\nclaims, sample reviews at the app's defaults (held-out accuracy, mean ± sd over seeds): " + ", ".join(
            f"{k} {v['mean']:.3f} ± {v['sd']:.3f} (n={v['n']})" for k, v in cl["text_sample"].items()
            if v.get("mean") is not None))
        print("time estimates, measured/estimate: " + ", ".join(
            f"{k} {v['ratio']}" + ("" if v["within_2x"] else " (NOT within 2x)") for k, v in cl["time_estimate"].items()))
    last = (results.get("reruns") or [results])[-1] if results.get("reruns") else results
    print(f"\nresults: {results_path}  (this run: {last.get('seconds', last.get('total_seconds'))} s, of which "
          f"{last.get('waited_for_quiet_s')} s waiting for a quiet machine; per section "
          f"{last.get('section_seconds', results.get('section_seconds'))})")
    if failed:
        print(f"\n{len(failed)} section(s) FAILED, their figures left out: {', '.join(failed)} (errors above and in "
              f"{results_path})")
