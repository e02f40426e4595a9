#!/usr/bin/env python
"""Render bench/results.json (or another results file) as the Markdown tables of docs/benchmarks.md.

    python bench/report.py [bench/results-full.json]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

NAMES = {
    "linear_probe": "linear probe", "partial": "partial unfreezing", "full": "full fine-tuning", "lora": "LoRA",
    "scratch_probe": "scratch baseline: linear probe (random weights)",
    "scratch_full": "scratch baseline: full training (random weights)",
    "linear_probe_no_early_stop": "(diagnostic) linear probe, early stopping off",
    "scratch_probe_no_early_stop": "(diagnostic) scratch linear probe, early stopping off",
}


def fmt(x, n=2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{n}f}"
    return str(x)


def render(results: dict) -> str:
    out = []
    m = results.get("machine", {})
    s = results.get("sections", {})
    out.append(f"Command: `{results.get('command')}` — started {results.get('started')}, took "
               f"{fmt(results.get('total_seconds'), 0)} s ({', '.join(f'{k} {v:.0f} s' for k, v in (results.get('section_seconds') or {}).items())}).\n")
    out.append(f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('mem_total_gb')} GiB, Python {m.get('python')}, "
               f"torch {m.get('torch')} ({m.get('torch_default_threads')} threads by default), timm {m.get('timm')}, "
               f"transformers {m.get('transformers')}, peft {m.get('peft')}, gradio {m.get('gradio')}; load average "
               f"at start {m.get('load_avg_at_start')}, at the end {m.get('load_avg_now')} (shared machine).\n")

    if m.get("git_commit"):
        out.append(f"Code measured: {m['git_commit']}" + (f"; uncommitted then: {', '.join(m['git_uncommitted'])}"
                                                          if m.get("git_uncommitted") else "") + ".\n")
    for rr in results.get("reruns", []):
        out.append(f"Re-run since: `{rr['command']}` at {rr['started']} (code {rr.get('git_commit', '?')})"
                   + (f" — {rr['why']}" if rr.get("why") else "") + ".\n")
    out.append("### Targets\n")
    out.append("| measure | value (wall) | value (CPU) | target | met |")
    out.append("|---|---|---|---|---|")
    for r in results.get("targets", []):
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        out.append(f"| {r['measure']} | {fmt(r['value'])} | {fmt(r.get('cpu_value'))} | {r['target']} | {met} |")
    out.append("")
    for r in results.get("targets", []):
        if r.get("note"):
            out.append(f"* {r['measure']}: {r['note']}")
    out.append("")

    p = s.get("probe")
    if p and "ours_fit_s" in p:
        st = p["settings"]
        out.append(f"### 1. Linear probe ({st['n_images']} sample digits, {st['n_train']} for training, "
                   f"{st['epochs']} epochs, batch {st['batch_size']}, embedding batch {st['embedding_batch']})\n")
        out.append("| | wall s | CPU s |")
        out.append("|---|---|---|")
        for label, key in (("ours: embeddings once + head on the cache", "ours_fit"),
                           ("  of which embeddings", "ours_embed"), ("  of which head epochs", "ours_head"),
                           ("ours: whole train_run (load, export, metrics too)", "ours_train_run"),
                           ("naive loop (backbone forward every epoch, validation every epoch)", "naive"),
                           ("naive loop, validating only once at the end", "naive_without_per_epoch_val"),
                           ("one plain forward pass, ready-made tensors (floor)", "forward")):
            out.append(f"| {label} | {fmt(p[key + '_s'])} | {fmt(p[key + '_cpu_s'])} |")
        out.append(f"\nDecoding + transforming the images alone: {fmt(p.get('data_pipeline_s'))} s.\n")

    o = s.get("overhead")
    if o:
        out.append("### 2. Engine overhead per training step (interleaved step by step with a hand-written loop)\n")
        out.append("| case | n_train | steps counted | engine/hand (median of pairs) wall | CPU | ratio of sums wall | CPU | engine s | hand s |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for key, v in o.items():
            if isinstance(v, dict) and "ratio" in v:
                out.append(f"| {key} | {v['settings']['n_train']} | {v['settings']['counted_steps']} | {fmt(v['ratio'], 3)} | "
                           f"{fmt(v['ratio_cpu'], 3)} | {fmt(v.get('ratio_sum'), 3)} | {fmt(v.get('ratio_sum_cpu'), 3)} | "
                           f"{fmt(v['engine_s'])} | {fmt(v['hand_s'])} |")
        out.append("")

    a = s.get("app")
    if a:
        out.append("### 3. Through the app (gradio_client → /train) vs train_run with the same run.json\n")
        if "ratio" in a:
            out.append("| | app | direct |")
            out.append("|---|---|---|")
            out.append(f"| wall s (min / median) | {a['app_wall_s']['min']} / {a['app_wall_s']['median']} | "
                       f"{a['direct_wall_s']['min']} / {a['direct_wall_s']['median']} |")
            out.append(f"| engine inside (RunStarted → RunFinished), median s | {a['engine_inside_app_s']['median']} | "
                       f"{a['engine_direct_s']['median']} |")
            out.append(f"| time around the engine, median s | {a['app_outside_engine_s']['median']} | "
                       f"{a['direct_outside_engine_s']['median']} |")
            out.append(f"| CPU s (min) | {a['app_cpu_s']['min']} | {a['direct_cpu_s']['min']} |")
            if a.get("main_thread_wall_s"):
                out.append(f"\n\"direct\" is `train_run` on a fresh worker thread, as the app's Runner runs it; on the "
                           f"main thread the same run took {a['main_thread_wall_s']['min']} s (min; app/main "
                           f"{a['ratio_vs_main_thread']}).")
            out.append(f"\nSettings: {json.dumps(a['settings']['options'])}, {a['settings']['strategy']}, "
                       f"{a['settings']['epochs']} epochs; server: {a['settings']['server']}.\n")
        else:
            out.append(f"{a.get('skipped') or a.get('error')}\n")

    c = s.get("cold")
    if c and c.get("seconds"):
        out.append("### 4. Cold start\n")
        out.append(f"`python app.py` → HTTP 200 on `/`: {c['seconds']['all']} s (min {c['seconds']['min']}). "
                   f"Imported by the time the page answered: "
                   + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in c["heavy_imported_before_page"].items()) + ".\n")
        imp = c["import_app"]
        out.append(f"`python -X importtime -c 'import app'`: {imp['total_s']} s in all; largest packages (cumulative, "
                   "nested ones counted inside their parents too):\n")
        out.append("| package | s |")
        out.append("|---|---|")
        for name, t in imp["top_level"][:10]:
            out.append(f"| {name} | {t} |")
        out.append("")

    mem = s.get("memory")
    if mem:
        out.append("### 5. Peak memory (VmHWM of a fresh process per run, default batch size)\n")
        out.append("| strategy | image (EfficientNet-Lite0) MB | text (MiniLM-L6) MB |")
        out.append("|---|---|---|")
        for strat in ("linear_probe", "partial", "full", "lora"):
            cells = []
            for mod in ("image", "text"):
                v = mem.get(f"{strat}_{mod}", {})
                cells.append(fmt(v.get("peak_rss_mb", "error")))
            out.append(f"| {strat} | " + " | ".join(cells) + " |")
        any_v = next(iter(mem.values()))
        out.append(f"\nBatch size {any_v.get('batch_size')}, {any_v.get('n_examples')} examples; RSS after imports "
                   f"alone: {any_v.get('rss_after_imports_mb')} MB.\n")

    acc = s.get("accuracy")
    if acc and "image" in acc:
        st = acc["settings"]
        out.append("### 6. Accuracy at small data (held-out accuracy, mean ± std over seeds "
                   f"{st['seeds']}; seconds per run, wall)\n")
        out.append(f"Held-out sets: images {st['heldout']['image']['n']} MNIST digits, texts "
                   f"{st['heldout']['text']['n']} reviews. {st['note']}\n")
        for mod in ("image", "text"):
            sizes = st["sizes"]
            out.append(f"**{mod}** ({'EfficientNet-Lite0' if mod == 'image' else 'MiniLM-L6'})\n")
            out.append("| strategy | " + " | ".join(f"N={n}" for n in sizes) + " |")
            out.append("|---|" + "---|" * len(sizes))
            for strat, by_n in acc.get(mod, {}).items():
                if strat == "heldout_checks":
                    continue
                cells = []
                for n in sizes:
                    v = by_n.get(str(n))
                    cells.append("–" if v is None else f"{v['heldout_accuracy']['mean']:.3f} ± "
                                 f"{v['heldout_accuracy']['std']:.3f} ({v['seconds']['mean']:.1f} s)")
                out.append(f"| {NAMES.get(strat, strat)} | " + " | ".join(cells) + " |")
            out.append("")

    t = s.get("threads")
    if t:
        out.append(f"### 7. Threads (torch default here: {t.get('torch_default')})\n")
        out.append("| model | work | 1 thread /s | 2 threads /s | 2 vs 1 | CPU per item, 2 vs 1 |")
        out.append("|---|---|---|---|---|---|")
        for mod in ("image", "text"):
            for what, v in (t.get(mod) or {}).items():
                if what == "embedding_batch_size":
                    continue
                out.append(f"| {mod} | {what} | {v['per_s_1_thread']} | {v['per_s_2_threads']} | "
                           f"x{v['speedup_2_over_1']} | x{v['cpu_cost_2_over_1']} |")
        eb = (t.get("image") or {}).get("embedding_batch_size")
        if eb:
            out.append("\nImage forward pass (eval mode, default threads) by batch size: "
                       + ", ".join(f"batch {b}: {eb[f'batch_{b}']['images_per_s']} img/s" for b in (4, 8, 32)) + ".\n")
    return "\n".join(out)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("results-full.json")
    print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
