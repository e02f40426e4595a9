"""The Markdown tables of docs/benchmarks.md, one function per section, from a results dict.

Reads both result formats: medians with spread (this package) and the plain minimum-over-rounds
numbers of results written before it (the page says which is which)."""
from __future__ import annotations

import json

from bench.report_familiarity import familiarity
from bench.targets import med

NAMES = {
    "linear_probe": "linear probe", "partial": "partial unfreezing", "full": "full fine-tuning", "lora": "LoRA",
    "scratch_probe": "scratch baseline: linear probe (random weights)",
    "scratch_full": "scratch baseline: full training (random weights)",
    "linear_probe_no_early_stop": "(diagnostic) linear probe, early stopping off",
    "scratch_probe_no_early_stop": "(diagnostic) scratch linear probe, early stopping off",
}


def fmt(x, n=2) -> str:
    """A number, or a summary as 'median (min-max)'."""
    if isinstance(x, dict):
        if x.get("median") is None:
            return "–"
        s = f"{x['median']:.{n}f}"
        return s + (f" ({x['min']:.{n}f}-{x['max']:.{n}f})" if x.get("n", 1) > 1 else "")
    if x is None:
        return "–"
    return f"{x:.{n}f}" if isinstance(x, float) else str(x)


def estimator(section: dict) -> str:
    est = (section.get("settings") or {}).get("estimator")
    return est or "minimum over rounds (results from before the fairness fixes)"


def targets(results: dict) -> list[str]:
    out = ["| measure | value (wall) | spread | value (CPU) | target | met |", "|---|---|---|---|---|---|"]
    for r in results.get("targets", []):
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        sp = "–" if not r.get("spread") else f"{r['spread'][0]}-{r['spread'][1]}"
        out.append(f"| {r['measure']} | {fmt(r['value'])} | {sp} | {fmt(r.get('cpu_value'))} | {r['target']} | {met} |")
    out.append("")
    out += [f"* {r['measure']}: {r['note']}" for r in results.get("targets", []) if r.get("note")]
    return out + [""]


def probe(p: dict) -> list[str]:
    st = p["settings"]
    out = [f"### 1. Linear probe ({st['n_images']} sample digits, {st['n_train']} for training, {st['epochs']} epochs, "
           f"batch {st['batch_size']}, embedding batch {st['embedding_batch']})\n",
           f"Seconds: {estimator(p)}" + (f", {st['rounds']} rounds per side" if st.get("rounds") else "") + ".\n",
           "| | wall s | CPU s |", "|---|---|---|"]
    for label, key in (("ours: embeddings once + head on the cache", "ours_fit"),
                       ("  of which embeddings", "ours_embed"), ("  of which head epochs", "ours_head"),
                       ("ours: whole train_run (load, export, metrics too)", "ours_train_run"),
                       ("naive loop (backbone forward every epoch, validation every epoch)", "naive"),
                       ("naive loop, validating only once at the end", "naive_without_per_epoch_val"),
                       ("one plain forward pass, ready-made tensors (floor)", "forward")):
        out.append(f"| {label} | {fmt(p[key + '_s'])} | {fmt(p[key + '_cpu_s'])} |")
    return out + [f"\nDecoding + transforming the images alone: {fmt(p.get('data_pipeline_s'))} s.\n"]


def overhead(o: dict) -> list[str]:
    out = ["### 2. Engine overhead per training step (interleaved step by step with a hand-written loop)\n",
           "| case | n_train | steps counted | engine/hand (median of pairs) wall | middle half | engine first | "
           "hand first | CPU | ratio of sums wall | CPU | engine s | hand s |", "|---|" * 1 + "---|" * 11]
    for key, v in o.items():
        if isinstance(v, dict) and "ratio" in v:
            sp, bo = v.get("ratio_spread") or {}, v.get("ratio_by_order") or {}
            mid = f"{sp['q1']}-{sp['q3']}" if "q1" in sp else "–"
            out.append(f"| {key} | {v['settings']['n_train']} | {v['settings']['counted_steps']} | {fmt(v['ratio'], 3)} | "
                       f"{mid} | {fmt(bo.get('engine_first'), 3)} | {fmt(bo.get('hand_first'), 3)} | "
                       f"{fmt(v['ratio_cpu'], 3)} | {fmt(v.get('ratio_sum'), 3)} | {fmt(v.get('ratio_sum_cpu'), 3)} | "
                       f"{fmt(v['engine_s'])} | {fmt(v['hand_s'])} |")
    if not any("ratio_by_order" in v for v in o.values() if isinstance(v, dict)):
        out.append("\nThese pairs always ran the engine step first (before the fairness fixes).")
    return out + [""]


def app(a: dict) -> list[str]:
    out = ["### 3. Through the app (gradio_client → /train) vs train_run with the same run.json\n"]
    if "ratio" not in a:
        return out + [f"{a.get('skipped') or a.get('error')}\n"]
    out += [f"Cells: median (min-max) over rounds; ratios: {estimator(a)}.\n", "| | app | direct |", "|---|---|---|",
            f"| wall s | {fmt(a['app_wall_s'])} | {fmt(a['direct_wall_s'])} |",
            f"| engine inside (RunStarted → RunFinished) s | {fmt(a['engine_inside_app_s'])} | {fmt(a['engine_direct_s'])} |",
            f"| time around the engine s | {fmt(a['app_outside_engine_s'])} | {fmt(a['direct_outside_engine_s'])} |",
            f"| CPU s | {fmt(a['app_cpu_s'])} | {fmt(a['direct_cpu_s'])} |"]
    if a.get("main_thread_wall_s"):
        out.append(f"\n\"direct\" is `train_run` on a fresh worker thread, as the app's Runner runs it; on the main "
                   f"thread the same run took {fmt(a['main_thread_wall_s'])} s (app/main {fmt(a['ratio_vs_main_thread'])}).")
    sp = a.get("separate_processes") or {}
    if "cold" in sp:
        c = sp["cold"]
        out.append(f"\nEach side its own process, both warm (server after one run; CLI process after one untimed run): "
                   f"app {fmt(sp['app_wall_s'])} s vs CLI {fmt(sp['cli_wall_s'])} s, app/CLI {fmt(sp['ratio'])} (engine "
                   f"time alone {fmt(sp['ratio_engine'])}). Both cold (first run of a fresh server vs a fresh `python -m "
                   f"tl_ui train` process, interpreter and imports included): {c['app_first_run_wall_s']} s vs "
                   f"{c['cli_process_wall_s']} s ({c['ratio']}).")
    return out + [f"\nSettings: {json.dumps(a['settings']['options'])}, {a['settings']['strategy']}, "
                  f"{a['settings']['epochs']} epochs; server: {a['settings']['server']}.\n"]


def cold(c: dict) -> list[str]:
    out = ["### 4. Cold start\n",
           f"`python app.py` → HTTP 200 on `/`: {c['seconds']['all']} s (median {c['seconds']['median']}). Imported by "
           "the time the page answered: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in
                                                       c["heavy_imported_before_page"].items()) + ".\n"]
    imp = c["import_app"]
    out += [f"`python -X importtime -c 'import app'`: {imp['total_s']} s in all; largest packages (cumulative, nested "
            "ones counted inside their parents too):\n", "| package | s |", "|---|---|"]
    return out + [f"| {name} | {t} |" for name, t in imp["top_level"][:10]] + [""]


def memory(mem: dict) -> list[str]:
    out = ["### 5. Peak memory (VmHWM of a fresh process per run, default batch size)\n",
           "| strategy | image (EfficientNet-Lite0) MB | text (MiniLM-L6) MB |", "|---|---|---|"]
    for strat in ("linear_probe", "partial", "full", "lora", "setfit"):
        if not any(f"{strat}_{m}" in mem for m in ("image", "text")):
            continue   # (SetFit: texts only, and runs from before it)
        out.append(f"| {strat} | " + " | ".join(fmt(mem.get(f"{strat}_{m}", {}).get("peak_rss_mb", "–"))
                                                for m in ("image", "text")) + " |")
    any_v = next(v for k, v in mem.items() if k != "machine_load")
    return out + [f"\nBatch size {any_v.get('batch_size')}, {any_v.get('n_examples')} examples; RSS after imports "
                  f"alone: {any_v.get('rss_after_imports_mb')} MB.\n"]


def accuracy(acc: dict) -> list[str]:
    st = acc["settings"]
    old = any("std" in v["heldout_accuracy"] for m in ("image", "text") for by_n in acc.get(m, {}).values()
              if isinstance(by_n, dict) for v in by_n.values() if isinstance(v, dict) and "heldout_accuracy" in v)
    out = [f"### 6. Accuracy at small data (held-out accuracy, mean ± {'population std' if old else 'sd'} over seeds "
           f"{st['seeds']}; seconds per run, wall)\n",
           f"Held-out sets: images {st['heldout']['image']['n']} ({st['heldout']['image'].get('source') or 'MNIST'}), "
           f"texts {st['heldout']['text']['n']} reviews; pools {st.get('pool')}. {st['note']}\n"]
    out += [f"Note: {n}\n" for n in acc.get("notes", [])]
    for mod in ("image", "text"):
        rows = {k: v for k, v in acc.get(mod, {}).items() if k != "heldout_checks" and isinstance(v, dict)}
        sizes = sorted({int(n) for v in rows.values() for n in v}) or st["sizes"]
        out += [f"**{mod}** ({'EfficientNet-Lite0' if mod == 'image' else 'MiniLM-L6'})\n",
                "| strategy | " + " | ".join(f"N={n}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
        for strat, by_n in rows.items():
            cells = []
            for n in sizes:
                v = by_n.get(str(n))
                h = v and v["heldout_accuracy"]
                cells.append("–" if not h or h.get("mean") is None else
                             f"{h['mean']:.3f} ± {h.get('sd', h.get('std')):.3f} ({v['seconds']['mean']:.1f} s)")
            out.append(f"| {NAMES.get(strat, strat)} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def threads(t: dict) -> list[str]:
    out = [f"### 7. Threads (torch default here: {t.get('torch_default')}; {t.get('estimator', 'best of rounds')})\n",
           "| model | work | 1 thread /s | 2 threads /s | 2 vs 1 | CPU per item, 2 vs 1 |", "|---|---|---|---|---|---|"]
    for mod in ("image", "text"):
        for what, v in (t.get(mod) or {}).items():
            if what != "embedding_batch_size":
                out.append(f"| {mod} | {what} | {v['per_s_1_thread']} | {v['per_s_2_threads']} | "
                           f"x{fmt(v['speedup_2_over_1'])} | x{fmt(v['cpu_cost_2_over_1'])} |")
    eb = (t.get("image") or {}).get("embedding_batch_size")
    if eb:
        out.append("\nImage forward pass (eval mode, default threads) by batch size: "
                   + ", ".join(f"batch {b}: {eb[f'batch_{b}']['images_per_s']} img/s" for b in (4, 8, 32)) + ".\n")
    return out


def claims(c: dict) -> list[str]:
    st = c["settings"]
    out = ["### 8. The figures the app quotes (`--only claims`)\n",
           "`RunConfig(model_id, strategy, seed)`: the app's defaults (batch 8, the strategy's default epochs and "
           "learning rate, early stopping, the engine's own split of what it is given). "
           f"Texts: {st['text_data']}. Images: {st['image_data']}.\n",
           "| sample reviews, held-out accuracy | mean ± sd | seeds | per seed | accuracy the app reports "
           "(metrics.json, the engine's own test examples) |",
           "|---|---|---|---|---|"]
    for name, v in c["text_sample"].items():
        runs = [r for r in c["runs"] if r["modality"] == "text" and r["strategy"] == name]
        out.append(f"| {NAMES.get(name, name)} | {v['mean']:.3f} ± {v['sd']:.3f} | {v['n']} | "
                   f"{', '.join(format(r['heldout_accuracy'], '.2f') for r in runs)} | "
                   f"{v['engine_val_accuracy']['mean']:.3f} ± {v['engine_val_accuracy']['sd']:.3f} |")
    d = c.get("text_lora_minus_probe") or {}
    if d.get("mean") is not None:
        out.append(f"\nLoRA minus linear probe, paired by seed: {d['mean']:+.3f} ± {d['sd']:.3f} ({d['n']} seeds).\n")
    out += [f"Time estimate (`estimate_seconds`) vs measured ({st['time']}):\n",
            "| modality/strategy | examples | epochs (run) | estimate s | measured s | of which the engine s | "
            "measured/estimate | within 2x | "
            "others' CPU share during the runs used | busy runs left out |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for key, t in c["time_estimate"].items():
        busy = " (machine busy)" if t.get("machine_busy") else ""
        out.append(f"| {key} | {t['n_examples']} | {t['epochs']} ({', '.join(map(str, t['epochs_run']))}) | "
                   f"{t['estimate_s']} | {fmt(t['measured_spread_s'], 1)} | {fmt(t.get('engine_s'), 1)} | {t['ratio']}{busy} | "
                   f"{'yes' if t['within_2x'] else '**no**'} | {', '.join(f'{x:.0%}' for x in t.get('others_share') or [] if x is not None) or '–'} | "
                   f"{t.get('runs_left_out_busy', 0)} |")
    return out + [""]


SECTION_TABLES = (("probe", probe, "ours_fit_s"), ("overhead", overhead, None), ("app", app, None),
                  ("cold", cold, "seconds"), ("memory", memory, None), ("accuracy", accuracy, "image"),
                  ("threads", threads, None), ("claims", claims, "text_sample"),
                  ("familiarity", familiarity, "settings"))


def sections(results: dict) -> list[str]:
    out: list[str] = []
    for name, render, needs in SECTION_TABLES:
        sec = (results.get("sections") or {}).get(name)
        if sec and (needs is None or sec.get(needs)) and "error" not in sec:
            out += render(sec)
            load = sec.get("machine_load") or {}
            if load.get("others_share_during") is not None:
                out.append(f"_Other processes used {load['others_share_during']:.0%} of the CPU during this section"
                           + (f" (waited {load['waited_s']:.0f} s for a quiet machine first)" if load.get("waited_s") else "")
                           + "._\n")
        elif sec and "error" in sec:
            out.append(f"### {name}: failed — {sec['error']}\n")
    return out
