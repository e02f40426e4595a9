"""Does SetFit earn its place, and is the estimate a SetFit run shows honest? (issue 32, item 3)

Three parts, each on MiniLM-L6 and CPU:

* `sizes`   – on the shipped reviews and the text bench's second set (the 2016 debate statements,
              bench/sections/text_small_n.py), at n training texts, per seed the same stratified draw
              for every method and the same held-out texts (the rest of the set, at most `test_cap`):
              the linear probe on frozen embeddings; SetFit at the paper's 20 iterations per example
              (2 x 20 x n pairs, one pass, rate 2e-5: `setfit_paper`); and SetFit at the app's default
              bound (tl_ui.core.config.SETFIT_MAX_PAIRS: `setfit_app`). Both SetFit variants end in the probe's own
              head on the tuned embeddings. How far the encoder moved: the largest absolute change of any
              weight, and the change of all its weights relative to their norm.
* `issue`   – the issue's measurement through the CLI: 32 reviews of each class
              (`groupby(label).sample(32, random_state=seed)`), `python -m tl_ui train --strategy setfit`
              and `--strategy linear_probe` with the same seed, then the model card's loading recipe
              (sentence-transformers + head.safetensors) on the other 336 reviews. The estimate the
              Results page shows first (the cross-validated one when metrics.json has it, else the test
              set's) and whether its 95% interval covers the held-out accuracy; beside it the head-only CV
              the page used to show for SetFit (a probe's repeated 5x3 CV on all 64 texts embedded by the
              tuned encoder), recomputed from the exported encoder.
* `whole_recipe_cv` – what a whole-recipe CV of SetFit costs: per fold, the contrastive stage on the
              fold's training texts (the app's pairs), the probe head, the fold's test texts; seconds per
              fold and the estimate against the held-out accuracy.

    python -m bench.sections.setfit_check [--quick] [--parts sizes,issue,whole_recipe_cv]
    # writes bench/setfit-results.json (--quick: setfit-results-quick.json); a run cut short keeps what it finished
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import (OthersLoad, child_env, load_results, log, machine_info, mean_sd, require_finished, rnd,
                           write_json)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "setfit-results.json"
RESULTS_QUICK = ROOT / "bench" / "setfit-results-quick.json"   # --quick: a smoke run, never the figures
PARTS = ("issue", "sizes", "whole_recipe_cv")
# sizes: (n, data set, seeds), run in this order. One SetFit fit at the paper's pairs takes about 40 s at 16
# texts, 3 min at 64 and 9 min at 200 on a quiet 2-core machine (48 tokens), several times that on a busy one.
# The app's bound (setfit_app) is run where it differs most from the paper's (`app_sizes`); at 64 the `issue`
# part runs it through the CLI.
PROFILE = {
    "quick": {"plan": [(16, "reviews", [0])], "datasets": ["reviews"], "app_sizes": [16], "test_cap": 100,
              "max_length": 48, "issue_seeds": [0], "cv_seeds": [0], "cv_folds": 2},
    "full": {"plan": [(16, "reviews", [0, 1, 2]), (64, "reviews", [0, 1, 2]), (16, "debates", [0, 1, 2]),
                      (64, "debates", [0, 1, 2]), (200, "reviews", [0]), (200, "debates", [0]),
                      (200, "reviews", [1, 2])],
             "datasets": ["reviews", "debates"], "app_sizes": [200], "test_cap": 200, "max_length": 48,
             "issue_seeds": [0, 1, 2], "cv_seeds": [0], "cv_folds": 5},
}


# -- how far the encoder moved ------------------------------------------------------------------------

def weights_of(model) -> dict:
    return {k: v.detach().clone().float() for k, v in model.encoder.state_dict().items() if v.is_floating_point()}


def encoder_shift(before: dict, model) -> dict:
    """Largest absolute change of any encoder weight, and ||after - before|| / ||before|| over all of them."""
    after = weights_of(model)
    diff = sum(float(((after[k] - before[k]) ** 2).sum()) for k in before)
    norm = sum(float((before[k] ** 2).sum()) for k in before)
    return {"max_abs": float(max(float((after[k] - before[k]).abs().max()) for k in before)),
            "relative": float(np.sqrt(diff / norm))}


# -- part 1: sizes ------------------------------------------------------------------------------------

def setfit_predict(texts, targets, train, test, classes, cfg, max_pairs: int, seed: int) -> dict:
    from bench.sections.text_small_n import embed, fit_probe, sentence_model
    from tl_ui.engine.training.setfit import contrastive_fit

    model, tokenizer = sentence_model(classes)
    before = weights_of(model)
    started = time.perf_counter()
    record = contrastive_fit(model, tokenizer, [texts[i] for i in train], targets[train], max_pairs=max_pairs,
                             max_length=cfg["max_length"], seed=seed)
    contrastive_s = time.perf_counter() - started
    x_train = embed(model, tokenizer, [texts[i] for i in train], cfg["max_length"])
    x_test = embed(model, tokenizer, [texts[i] for i in test], cfg["max_length"])
    predicted = fit_probe(x_train, targets[train], x_test, len(classes))
    return {"predicted": predicted, "seconds": time.perf_counter() - started, "contrastive_s": contrastive_s,
            "pairs": record["pairs"], "steps": record["steps"], "shift": encoder_shift(before, model),
            "last_losses": [rnd(x, 4) for x in record["losses"][-5:]]}


def run_sizes(cfg: dict, save) -> dict:
    import torch
    from statsmodels.stats.proportion import proportion_confint

    from bench.sections.text_small_n import datasets, draws, embed, fit_probe, sentence_model
    from tl_ui.core.config import SETFIT_MAX_PAIRS, SETFIT_PAIRS_PER_EXAMPLE

    sets, notes = datasets(cfg["datasets"])
    out = {"notes": notes, "datasets": {}}
    frozen = {}   # the probe's embeddings of every text, once per set
    for name, (texts, targets, classes, description) in sets.items():
        model, tokenizer = sentence_model(classes)
        frozen[name] = embed(model, tokenizer, texts, cfg["max_length"])
        out["datasets"][name] = {"description": description, "n_texts": len(texts), "classes": classes, "sizes": {}}
    for n, name, seeds in cfg["plan"]:   # cheapest first: a run cut short keeps the small sizes of both sets
        if name not in sets:
            continue
        texts, targets, classes, _ = sets[name]
        x, table = frozen[name], out["datasets"][name]["sizes"]
        folds = draws(targets, n, max(seeds) + 1, cfg["test_cap"])   # draw k is the same whatever `seeds` holds
        variants = [("setfit_paper", 2 * SETFIT_PAIRS_PER_EXAMPLE * n)] + (
            [("setfit_app", SETFIT_MAX_PAIRS)] if n in cfg["app_sizes"] else [])
        # several plan entries may add seeds to one (set, size): their runs are pooled
        rows = out["datasets"][name].setdefault("runs", {}).setdefault(str(n), {})
        for method in ("probe", *(v for v, _ in variants)):
            rows.setdefault(method, [])
        for seed in seeds:
            train, test = folds[seed]
            t0 = time.perf_counter()
            predicted = fit_probe(x[train], targets[train], x[test], len(classes))
            rows["probe"].append({"seed": seed, "correct": int((predicted == targets[test]).sum()),
                                  "total": len(test), "seconds": rnd(time.perf_counter() - t0, 2)})
            for variant, pairs in variants:
                torch.manual_seed(seed)
                others = OthersLoad().start()
                r = setfit_predict(texts, targets, train, test, classes, cfg, pairs, seed)
                rows[variant].append({"seed": seed, "correct": int((r["predicted"] == targets[test]).sum()),
                                      "total": len(test), "seconds": rnd(r["seconds"], 1),
                                      "contrastive_s": rnd(r["contrastive_s"], 1), "pairs": r["pairs"],
                                      "steps": r["steps"], "shift_max_abs": rnd(r["shift"]["max_abs"], 5),
                                      "shift_relative": rnd(r["shift"]["relative"], 5),
                                      "last_losses": r["last_losses"], "others_share": others.share()})
                log(f"setfit sizes {name} n={n} seed {seed}: probe {rows['probe'][-1]['correct'] / len(test):.3f}, "
                    f"{variant} {rows[variant][-1]['correct'] / len(test):.3f} ({r['pairs']} pairs, "
                    f"{r['seconds']:.0f} s, weights moved {r['shift']['max_abs']:.2e} max, "
                    f"{r['shift']['relative']:.2e} relative)")
            table[str(n)] = {m: summarise(v, proportion_confint) for m, v in rows.items() if v}
            save(out)
    return out


def summarise(rows: list[dict], confint) -> dict:
    correct, total = sum(r["correct"] for r in rows), sum(r["total"] for r in rows)
    low, high = confint(correct, total, method="wilson")
    out = {"accuracy": rnd(correct / total), "ci": [rnd(low), rnd(high)], "seeds": len(rows),
           "per_seed": [rnd(r["correct"] / r["total"]) for r in rows], "test_per_seed": rows[0]["total"],
           "seconds": mean_sd([r["seconds"] for r in rows], 1), "runs": rows}
    if "shift_max_abs" in rows[0]:
        out["shift_max_abs"] = max(r["shift_max_abs"] for r in rows)
        out["shift_relative"] = mean_sd([r["shift_relative"] for r in rows], 5)
    return out


# -- part 2: the issue's measurement through the CLI ------------------------------------------------------

def issue_subset(seed: int):
    """32 reviews of each class (the issue's draw) and the other reviews."""
    import pandas as pd

    from tl_ui.data import sample_dataset_path

    frame = pd.read_csv(sample_dataset_path("text"))
    subset = frame.groupby("label").sample(32, random_state=seed)
    return subset, frame.drop(subset.index)


def train_cli(csv: Path, strategy: str, seed: int, out: Path) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tl_ui", "train", "--data", str(csv), "--model", "minilm_l6",
                           "--strategy", strategy, "--seed", str(seed), "--out", str(out)],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True)
    wall = time.perf_counter() - started
    require_finished(out, f"setfit issue: train --strategy {strategy} --seed {seed} (exit code {proc.returncode}; "
                          f"{proc.stderr.strip()[-300:]})")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"metrics": metrics, "wall_s": wall}


def load_exported(run_dir: Path):
    """The model card's recipe (tl_ui/engine/export/sentence_export.py CARD_SNIPPET)."""
    import torch
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(run_dir / "model" / "encoder"), device="cpu")
    head = load_file(str(run_dir / "model" / "head.safetensors"))
    classes = json.loads((run_dir / "model" / "transfer_lab.json").read_text())["classes"]

    def predict(texts):
        with torch.no_grad():
            vectors = encoder.encode(list(texts), convert_to_tensor=True, batch_size=32)
            return [classes[i] for i in (vectors @ head["weight"].T + head["bias"]).argmax(-1).tolist()]

    return encoder, predict, classes


def shown_estimate(metrics: dict) -> dict:
    """What the Results page shows first (tl_ui/ui/evidence.py headline_md)."""
    cv = metrics.get("cross_validation")
    if cv and cv.get("accuracy") is not None:
        return {"which": f"cross-validated ({cv.get('scope', 'no scope recorded')})", "accuracy": cv["accuracy"],
                "ci": cv["accuracy_ci"]}
    return {"which": f"test set ({metrics['n_val']} texts)", "accuracy": metrics["accuracy"], "ci": metrics["accuracy_ci"]}


def head_only_cv(encoder, texts, labels, seed: int) -> dict:
    """The estimate the page used to show first for SetFit: a probe's repeated 5x3 CV on every text's embedding
    from the tuned encoder (the test folds took part in tuning it)."""
    from tl_ui.engine.evaluation.report import cross_validate_probe

    classes = sorted(set(labels))
    vectors = encoder.encode(list(texts), batch_size=32)
    cv = cross_validate_probe(np.asarray(vectors), np.array([classes.index(x) for x in labels]), len(classes), seed)
    return {"accuracy": cv["accuracy"], "ci": cv["accuracy_ci"]}


def encoder_shift_exported(encoder) -> dict:
    """How far the exported encoder's weights lie from MiniLM's shipped ones."""
    from sentence_transformers import SentenceTransformer

    from tl_ui.core.catalog import get_model, packaged_path

    base = SentenceTransformer(str(packaged_path(get_model("minilm_l6"))), device="cpu")
    before = {k: v.float() for k, v in base.state_dict().items() if v.is_floating_point()}
    after = {k: v.float() for k, v in encoder.state_dict().items() if k in before}
    diff = sum(float(((after[k] - before[k]) ** 2).sum()) for k in after)
    norm = sum(float((before[k] ** 2).sum()) for k in after)
    return {"max_abs": rnd(max(float((after[k] - before[k]).abs().max()) for k in after), 6),
            "relative": rnd(float(np.sqrt(diff / norm)), 6)}


def run_issue(cfg: dict, save) -> dict:
    from tl_ui.core.config import SETFIT_MAX_PAIRS

    out = {"setfit_max_pairs": SETFIT_MAX_PAIRS, "runs": []}
    for seed in cfg["issue_seeds"]:
        subset, rest = issue_subset(seed)
        with tempfile.TemporaryDirectory(prefix="tlbench-setfit-") as d:
            csv = Path(d) / "subset.csv"
            subset.to_csv(csv, index=False)
            for strategy in ("setfit", "linear_probe"):
                run_dir = Path(d) / strategy
                others = OthersLoad().start()
                trained = train_cli(csv, strategy, seed, run_dir)
                share = others.share()
                encoder, predict, _ = load_exported(run_dir)
                predicted = predict(rest["text"])
                held = float(np.mean(np.array(predicted) == rest["label"].to_numpy()))
                shown = shown_estimate(trained["metrics"])
                row = {"seed": seed, "strategy": strategy, "n": len(subset), "n_heldout": len(rest),
                       "heldout_accuracy": rnd(held, 4), "shown": shown,
                       "covers": bool(shown["ci"][0] <= held <= shown["ci"][1]),
                       "cross_validation_in_metrics": trained["metrics"].get("cross_validation"),
                       "test_accuracy": trained["metrics"]["accuracy"], "test_ci": trained["metrics"]["accuracy_ci"],
                       "n_test": trained["metrics"]["n_val"], "n_train": trained["metrics"]["n_train"],
                       "wall_s": rnd(trained["wall_s"], 1), "train_seconds": trained["metrics"].get("train_seconds"),
                       "others_share": share}
                if strategy == "setfit":
                    row["head_only_cv"] = head_only_cv(encoder, subset["text"], subset["label"].tolist(), seed)
                    row["head_only_cv_covers"] = bool(row["head_only_cv"]["ci"][0] <= held <= row["head_only_cv"]["ci"][1])
                    row["encoder_shift"] = encoder_shift_exported(encoder)
                out["runs"].append(row)
                log(f"setfit issue seed {seed} {strategy}: held-out {held:.3f} on {len(rest)}; shown {shown['which']} "
                    f"{shown['accuracy']:.3f} {shown['ci']} covers={row['covers']}"
                    + (f"; head-only CV {row['head_only_cv']['accuracy']:.3f} {row['head_only_cv']['ci']}, weights moved "
                       f"{row['encoder_shift']['max_abs']:.1e}" if strategy == "setfit" else ""))
                save(out)
    by = {s: [r for r in out["runs"] if r["strategy"] == s] for s in ("setfit", "linear_probe")}
    out["summary"] = {s: {"heldout": mean_sd([r["heldout_accuracy"] for r in rs]),
                          "shown": mean_sd([r["shown"]["accuracy"] for r in rs]),
                          "covers": f"{sum(r['covers'] for r in rs)} of {len(rs)}"} for s, rs in by.items() if rs}
    if by["setfit"]:
        out["summary"]["setfit"]["head_only_cv"] = mean_sd([r["head_only_cv"]["accuracy"] for r in by["setfit"]])
        out["summary"]["setfit"]["head_only_cv_covers"] = f"{sum(r['head_only_cv_covers'] for r in by['setfit'])} of {len(by['setfit'])}"
    return out


# -- part 3: what a whole-recipe CV of SetFit costs ---------------------------------------------------------

def run_whole_recipe_cv(cfg: dict, save) -> dict:
    """Per fold of a stratified k-fold (one repeat) of the 64 issue reviews: the contrastive stage on the fold's
    training texts (the app's default pairs, at most 2 x 20 per text), the probe head, its test texts."""
    import torch
    from sklearn.model_selection import StratifiedKFold

    from bench.sections.text_small_n import embed, fit_probe, sentence_model
    from tl_ui.core.config import SETFIT_MAX_PAIRS, SETFIT_PAIRS_PER_EXAMPLE
    from tl_ui.engine.training.setfit import contrastive_fit

    out = {"folds": cfg["cv_folds"], "max_length": cfg["max_length"], "runs": []}
    for seed in cfg["cv_seeds"]:
        subset, rest = issue_subset(seed)
        texts, classes = subset["text"].tolist(), sorted(set(subset["label"]))
        targets = np.array([classes.index(x) for x in subset["label"]])
        rest_texts, rest_targets = rest["text"].tolist(), np.array([classes.index(x) for x in rest["label"]])
        scores, seconds = [], []
        for k, (train, test) in enumerate(StratifiedKFold(cfg["cv_folds"], shuffle=True, random_state=seed)
                                          .split(texts, targets)):
            torch.manual_seed(seed)
            started = time.perf_counter()
            model, tokenizer = sentence_model(classes)
            contrastive_fit(model, tokenizer, [texts[i] for i in train], targets[train], seed=seed,
                            max_pairs=min(SETFIT_MAX_PAIRS, 2 * SETFIT_PAIRS_PER_EXAMPLE * len(train)),
                            max_length=cfg["max_length"])
            x_train = embed(model, tokenizer, [texts[i] for i in train], cfg["max_length"])
            x_test = embed(model, tokenizer, [texts[i] for i in test], cfg["max_length"])
            scores.append(float(np.mean(fit_probe(x_train, targets[train], x_test, len(classes)) == targets[test])))
            seconds.append(time.perf_counter() - started)
            log(f"setfit whole-recipe CV seed {seed} fold {k}: {scores[-1]:.3f} ({seconds[-1]:.0f} s)")
        # the held-out truth: the same recipe on all 64 texts, scored on the other reviews
        model, tokenizer = sentence_model(classes)
        contrastive_fit(model, tokenizer, texts, targets, seed=seed, max_length=cfg["max_length"],
                        max_pairs=min(SETFIT_MAX_PAIRS, 2 * SETFIT_PAIRS_PER_EXAMPLE * len(texts)))
        predicted = fit_probe(embed(model, tokenizer, texts, cfg["max_length"]), targets,
                              embed(model, tokenizer, rest_texts, cfg["max_length"]), len(classes))
        out["runs"].append({"seed": seed, "fold_accuracy": [rnd(s, 4) for s in scores], "cv_accuracy": rnd(np.mean(scores), 4),
                            "heldout_accuracy": rnd(float(np.mean(predicted == rest_targets)), 4),
                            "seconds_per_fold": mean_sd(seconds, 1), "seconds_all_folds": rnd(sum(seconds), 1)})
        save(out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {','.join(PARTS)}")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default); on a machine "
                        "others load, 1 is faster (docs/benchmarks.md, 'Threads and the data pipeline')")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    mode = "quick" if args.quick else "full"
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    cfg = PROFILE[mode]
    # earlier parts stay (a partial re-run replaces only the parts it runs)
    path = RESULTS_QUICK if args.quick else RESULTS
    result = load_results(path)
    result.update({"mode": mode, "settings": cfg})
    for part in parts:
        started = time.time()
        head = {"command": f"python -m bench.sections.setfit_check{' --quick' if args.quick else ''} --parts {part}"
                           + (f" --threads {args.threads}" if args.threads else ""),
                "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_info()}

        def save(partial, part=part, head=head):
            result[part] = {**head, **partial, "partial": True}
            write_json(path, result)

        fn = {"sizes": run_sizes, "issue": run_issue, "whole_recipe_cv": run_whole_recipe_cv}[part]
        result[part] = {**head, **fn(cfg, save), "seconds": rnd(time.time() - started, 0)}
        write_json(path, result)
    print(json.dumps({p: result[p].get("summary") for p in parts if isinstance(result.get(p), dict)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
