"""Operating point (issue 33): a threshold chosen for sensitivity 0.90 on the validation ("choose")
examples, reported on the test ("report") examples. How often does the test sensitivity fall below
0.90, how often does the TRUE sensitivity at that threshold (on unlimited new examples) fall below it,
how wide is the reported 95% Wilson interval, and does it cover the truth? At N = 50, 100, 200 examples
(and 1,000 for reference), split as the app splits (tl_ui/engine/evaluation/roles.py: test = 20% of N, validation
= 20% of the rest, the rest trains).

* simulated: scores of positives ~ N(delta, 1), negatives ~ N(0, 1), with delta for a true AUROC of 0.90
  (delta = sqrt 2 x Phi^-1(0.90)), turned into the calibrated probability of the positive class, at
  prevalence 50% and 20%; many data sets each (seeded). The true sensitivity at threshold t is known
  exactly: 1 - Phi(x_t - delta), x_t the score whose probability is t. Beside it, the coverage of the
  AUROC and AUPRC intervals (tl_ui.trust.roc) on the same small test sets, against the true AUROC
  Phi(delta / sqrt 2) and the true AUPRC (numerical integral of the binormal PR curve).
* probe: the app's linear probe (EfficientNet-Lite0 embeddings, full-batch head with the app's
  options, temperature fitted on the validation examples) on the 300 sample digits made two-class:
  digit 0 against the rest (prevalence 10%) and even against odd (50%). The "truth" is measured on the
  300 - N sample digits the run never saw.

    python -m bench.sections.operating_point           # writes bench/operating-point-results.json
    python -m bench.sections.operating_point --quick   # fewer data sets: bench/operating-point-results-quick.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional

import numpy as np

from bench.harness import ROOT, git_state, load_avg, log, mean_sd, rnd, write_json

RESULTS = {"full": ROOT / "bench" / "operating-point-results.json",
           "quick": ROOT / "bench" / "operating-point-results-quick.json"}
TARGET = 0.90
TRUE_AUROC = 0.90
PROFILE = {
    "quick": {"sizes": [50, 100, 200], "prevalences": [0.5, 0.2], "repeats": 400, "area_repeats": 100,
              "probe_repeats": 3, "probe_tasks": ["even vs odd"], "val_fraction": 0.2},
    "full": {"sizes": [50, 100, 200, 1000], "prevalences": [0.5, 0.2], "repeats": 2000, "area_repeats": 400,
             "probe_repeats": 50, "probe_tasks": ["0 vs rest", "even vs odd"], "val_fraction": 0.2},
}


def role_sizes(n: int, prevalence: float, val_fraction: float) -> dict:
    """(positives, negatives) in each role for N examples at this prevalence, from the app's own split."""
    from tl_ui.data import LabelledDataset
    from tl_ui.engine.evaluation.roles import split_roles

    positives = int(round(n * prevalence))
    labels = ["yes"] * positives + ["no"] * (n - positives)
    dataset = LabelledDataset("text", [f"example {i}" for i in range(n)], labels)
    roles = split_roles(dataset, val_fraction, seed=0)
    truth = np.array(labels) == "yes"
    return {role: (int(truth[idx].sum()), int((~truth[idx]).sum()))
            for role, idx in (("train", roles.train), ("choose", roles.choose), ("report", roles.report))}


def _binormal_probabilities(scores: np.ndarray, delta: float, prevalence: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(delta * scores - delta ** 2 / 2 + np.log(prevalence / (1 - prevalence)))))


def _score_of_probability(p: float, delta: float, prevalence: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return (np.log(p / (1 - p)) + delta ** 2 / 2 - np.log(prevalence / (1 - prevalence))) / delta


def _draw(rng, counts: tuple, delta: float, prevalence: float) -> tuple[np.ndarray, np.ndarray]:
    m, n = counts
    scores = np.concatenate([rng.normal(delta, 1.0, m), rng.normal(0.0, 1.0, n)])
    return _binormal_probabilities(scores, delta, prevalence), np.arange(m + n) < m


def true_auprc(delta: float, prevalence: float) -> float:
    from scipy import integrate
    from scipy.stats import norm

    def precision_times_density(t):
        tpr, fpr = norm.sf(t - delta), norm.sf(t)
        return prevalence * tpr / (prevalence * tpr + (1 - prevalence) * fpr) * norm.pdf(t - delta)

    return float(integrate.quad(precision_times_density, -12, delta + 12, limit=200)[0])


def summarise(rows: list[dict]) -> dict:
    """The cell's answer: shares below the target, the interval's width and coverage."""
    measured = [r for r in rows if r["test_sensitivity"] is not None]
    widths = np.array([r["ci"][1] - r["ci"][0] for r in measured])
    covered = [r["ci"][0] <= r["true_sensitivity"] <= r["ci"][1] for r in measured]
    return {
        "runs": len(rows),
        "test_below_target": rnd(np.mean([r["test_sensitivity"] < TARGET for r in measured]), 3),
        "true_below_target": rnd(np.mean([r["true_sensitivity"] < TARGET for r in rows]), 3),
        "test_sensitivity": mean_sd(r["test_sensitivity"] for r in measured),
        "true_sensitivity": mean_sd(r["true_sensitivity"] for r in rows),
        "true_sensitivity_p10": rnd(np.quantile([r["true_sensitivity"] for r in rows], 0.1), 3),
        "true_specificity": mean_sd(r["true_specificity"] for r in rows),
        "ci_width": {"median": rnd(np.median(widths), 3), "q1": rnd(np.quantile(widths, 0.25), 3),
                     "q3": rnd(np.quantile(widths, 0.75), 3)},
        "ci_covers_true": rnd(np.mean(covered), 3),
        "small_choose_note": rnd(np.mean([r["note"] for r in rows]), 3),
        "no_test_positives": int(len(rows) - len(measured)),
    }


def simulated_cell(n: int, prevalence: float, cfg: dict, seed: int) -> dict:
    from scipy.stats import norm

    from tl_ui.trust.operating_point import choose_threshold, report_at_threshold

    delta = float(np.sqrt(2) * norm.ppf(TRUE_AUROC))
    sizes = role_sizes(n, prevalence, cfg["val_fraction"])
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(cfg["repeats"]):
        choose_p, choose_y = _draw(rng, sizes["choose"], delta, prevalence)
        report_p, report_y = _draw(rng, sizes["report"], delta, prevalence)
        choice = choose_threshold(choose_p, choose_y, "sensitivity", TARGET)
        report = report_at_threshold(report_p, report_y, choice["threshold"])
        x_t = _score_of_probability(choice["threshold"], delta, prevalence)
        rows.append({"test_sensitivity": report["sensitivity"], "ci": report["sensitivity_ci"],
                     "true_sensitivity": float(norm.sf(x_t - delta)), "true_specificity": float(norm.cdf(x_t)),
                     "note": choice["note"] is not None})
    return {"roles": sizes, "delta": rnd(delta, 4), **summarise(rows), "areas": areas_cell(sizes, delta, prevalence,
                                                                                          cfg, seed)}


def areas_cell(sizes: dict, delta: float, prevalence: float, cfg: dict, seed: int) -> dict:
    """Coverage and median width of the AUROC and AUPRC intervals on this cell's test sets, beside the
    textbook versions they replace: the plain DeLong interval A +- z SE and the percentile bootstrap."""
    from scipy.stats import norm

    from tl_ui.trust.roc import auroc_interval, delong_auroc, stratified_bootstrap

    m, n = sizes["report"]
    if min(m, n) == 0:
        return {"skipped": "a test set without positives or negatives"}
    true_auroc, true_ap = float(norm.cdf(delta / np.sqrt(2))), true_auprc(delta, m / (m + n))
    rng = np.random.default_rng(seed + 1)
    intervals: dict = {"auroc": [], "auroc_plain_delong": [], "auprc": [], "auprc_percentile": []}
    for r in range(cfg["area_repeats"]):
        p, y = _draw(rng, sizes["report"], delta, prevalence)
        intervals["auroc"].append(auroc_interval(p, y)["auroc_ci"])
        auc, variance = delong_auroc(p, y)
        half = 1.959964 * np.sqrt(variance)
        intervals["auroc_plain_delong"].append([max(auc - half, 0.0), min(auc + half, 1.0)])
        boot = stratified_bootstrap(p, y, seed=r, keep_samples=True)
        intervals["auprc"].append(boot["auprc_ci"])
        intervals["auprc_percentile"].append(np.quantile(boot["auprc_samples"], [0.025, 0.975]).tolist())
    out = {"true_auroc": rnd(true_auroc, 4), "true_auprc": rnd(true_ap, 4), "runs": cfg["area_repeats"]}
    for name, found in intervals.items():
        true = true_auroc if name.startswith("auroc") else true_ap
        out[name] = {"covers": rnd(np.mean([lo <= true <= hi for lo, hi in found]), 3),
                     "median_width": rnd(np.median([hi - lo for lo, hi in found]), 3),
                     "zero_width": int(sum(hi - lo <= 0 for lo, hi in found))}
    return out


INTERVAL_SETTINGS = [(20, 20, 0.76), (20, 20, 0.90), (20, 20, 0.98), (50, 50, 0.90), (20, 80, 0.90),
                     (40, 160, 0.90), (100, 100, 0.90)]


def interval_methods(cfg: dict) -> dict:
    """The AUROC and AUPRC intervals against their textbook versions, on binormal test sets of given
    numbers of positives and negatives and true AUROC (what the docstrings of tl_ui/trust/roc.py quote)."""
    from scipy.stats import norm

    out = {}
    for i, (m, n, auroc) in enumerate(INTERVAL_SETTINGS):
        delta = float(np.sqrt(2) * norm.ppf(auroc))
        out[f"{m}+{n} AUROC {auroc}"] = areas_cell({"report": (m, n)}, delta, m / (m + n), cfg, seed=7000 + i)
        log(f"operating point intervals {m}+{n} AUROC {auroc}: {out[f'{m}+{n} AUROC {auroc}']}")
    return out


# -- the app's linear probe on the sample digits -------------------------------------------------------------

def _digit_embeddings() -> tuple:
    import torch

    from bench.data import load, sample_dataset
    from tl_ui.engine.probe.features import compute_head_inputs
    from tl_ui.engine.models.inputs import make_dataset, make_loader

    ds = sample_dataset("image")
    loaded = load("image", ds.classes)
    started = time.time()
    data = make_dataset(loaded, ds.items, None, augment=False)
    x = compute_head_inputs(loaded, make_loader(loaded, data, 16, shuffle=False), device=torch.device("cpu")).numpy()
    log(f"operating point: embedded {len(ds)} digits in {time.time() - started:.0f} s")
    return ds, x


TASKS = {"0 vs rest": ("0", lambda digit: digit == "0"), "even vs odd": ("even", lambda digit: int(digit) % 2 == 0)}


def probe_cell(task: str, n: int, repeats: int, ds, x: np.ndarray, val_fraction: float) -> dict:
    from tl_ui.data import LabelledDataset, stratified_subset
    from tl_ui.engine.probe.solver import APP_OPTIONS, fit_head
    from tl_ui.engine.evaluation.roles import split_roles
    from tl_ui.trust.calibration import fit_temperature, softmax
    from tl_ui.trust.operating_point import operating_point_metrics, report_at_threshold

    positive, is_positive = TASKS[task]
    labels = [positive if is_positive(d) else "other" for d in ds.labels]
    two_class = LabelledDataset("image", list(ds.items), labels, source=f"sample digits, {task}")
    row_of = {item: i for i, item in enumerate(ds.items)}
    classes = two_class.classes
    k = classes.index(positive)
    rows, seconds = [], []
    for seed in range(repeats):
        subset = stratified_subset(two_class, n, seed)
        roles = split_roles(subset, val_fraction, seed)
        index = np.array([row_of[item] for item in subset.items])
        targets = subset.targets
        unseen = np.setdiff1d(np.arange(len(ds)), index)
        unseen_y = two_class.targets[unseen]
        head = fit_head(x[index[roles.train]], targets[roles.train], 2, choose_x=x[index[roles.choose]],
                        choose_y=targets[roles.choose], seed=seed, **APP_OPTIONS)
        logits = lambda rows_: x[rows_] @ head.weight.T + head.bias
        temperature = fit_temperature(logits(index[roles.choose]), targets[roles.choose])
        probs = {name: softmax(logits(rows_), temperature) for name, rows_ in
                 (("choose", index[roles.choose]), ("report", index[roles.report]), ("unseen", unseen))}
        started = time.perf_counter()
        out = operating_point_metrics(probs["choose"], targets[roles.choose], probs["report"], targets[roles.report],
                                      classes, positive, "sensitivity", TARGET, seed=seed)
        seconds.append(time.perf_counter() - started)
        op = out["operating_point"]
        truth = report_at_threshold(probs["unseen"][:, k], unseen_y == k, op["threshold"])
        rows.append({"test_sensitivity": op["sensitivity"], "ci": op["sensitivity_ci"],
                     "true_sensitivity": truth["sensitivity"], "true_specificity": truth["specificity"],
                     "note": op["note"] is not None, "test_positives": op["tp"] + op["fn"],
                     "choose_positives": int((targets[roles.choose] == k).sum()),
                     "unseen_positives": int((unseen_y == k).sum()), "auroc": out["roc"]["auroc"],
                     "auroc_ci": out["roc"]["auroc_ci"], "threshold": rnd(op["threshold"], 4)})
    cell = summarise(rows)
    cell.update(test_positives=mean_sd(r["test_positives"] for r in rows),
                choose_positives=mean_sd(r["choose_positives"] for r in rows),
                unseen_positives=mean_sd(r["unseen_positives"] for r in rows),
                auroc=mean_sd(r["auroc"] for r in rows if r["auroc"] is not None),
                metrics_seconds={"median": rnd(np.median(seconds), 3), "max": rnd(max(seconds), 3)},
                runs_detail=rows)
    return cell


def run(cfg: dict, checkpoint=lambda partial: None) -> dict:
    out: dict = {"settings": dict(cfg), "target_sensitivity": TARGET, "simulated": {}, "probe": {}}
    for prevalence in cfg["prevalences"]:
        for i, n in enumerate(cfg["sizes"]):
            cell = simulated_cell(n, prevalence, cfg, seed=1000 * i + int(prevalence * 100))
            out["simulated"].setdefault(f"prevalence {prevalence}", {})[str(n)] = cell
            log(f"operating point simulated prevalence {prevalence} N={n}: test<0.90 {cell['test_below_target']}, "
                f"true<0.90 {cell['true_below_target']}, width {cell['ci_width']['median']}, "
                f"covers {cell['ci_covers_true']}, areas {cell['areas']}")
            checkpoint(out)
    out["interval_methods"] = interval_methods(cfg)
    checkpoint(out)
    if cfg.get("probe_repeats"):
        ds, x = _digit_embeddings()
        for task in cfg["probe_tasks"]:
            for n in [s for s in cfg["sizes"] if s < len(ds)]:
                cell = probe_cell(task, n, cfg["probe_repeats"], ds, x, cfg["val_fraction"])
                out["probe"].setdefault(task, {})[str(n)] = cell
                log(f"operating point probe {task} N={n}: test<0.90 {cell['test_below_target']}, "
                    f"true<0.90 {cell['true_below_target']}, width {cell['ci_width']['median']}, "
                    f"test positives {cell['test_positives']['mean']}")
                checkpoint(out)
    return out


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def markdown(result: dict) -> str:
    """The tables of docs/benchmarks.md's section, from a results file (`--markdown`)."""
    res = result["operating_point"]
    lines = ["| data | N | validation pos / neg | test pos / neg | note shown | test sens. < 0.90 | "
             "true sens. < 0.90 | true sens. (mean; 10th pct) | true spec. (mean) | 95% interval width (median; IQR) | "
             "interval covers true |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for prevalence, cells in res["simulated"].items():
        for n, c in cells.items():
            lines.append(
                f"| simulated, {prevalence} | {n} | {c['roles']['choose'][0]} / {c['roles']['choose'][1]} | "
                f"{c['roles']['report'][0]} / {c['roles']['report'][1]} | {_pct(c['small_choose_note'])} | "
                f"{_pct(c['test_below_target'])} | {_pct(c['true_below_target'])} | "
                f"{c['true_sensitivity']['mean']:.2f}; {c['true_sensitivity_p10']:.2f} | {c['true_specificity']['mean']:.2f} | "
                f"{c['ci_width']['median']:.2f}; {c['ci_width']['q1']:.2f}–{c['ci_width']['q3']:.2f} | "
                f"{_pct(c['ci_covers_true'])} |")
    for task, cells in res.get("probe", {}).items():
        for n, c in cells.items():
            lines.append(
                f"| probe, digits {task} | {n} | {c['choose_positives']['mean']:.0f} / – | "
                f"{c['test_positives']['mean']:.0f} / – | {_pct(c['small_choose_note'])} | {_pct(c['test_below_target'])} | "
                f"{_pct(c['true_below_target'])} | {c['true_sensitivity']['mean']:.2f}; {c['true_sensitivity_p10']:.2f} | "
                f"{c['true_specificity']['mean']:.2f} | {c['ci_width']['median']:.2f}; "
                f"{c['ci_width']['q1']:.2f}–{c['ci_width']['q3']:.2f} | {_pct(c['ci_covers_true'])} |")
    lines += ["", "| test set (pos + neg, true AUROC) | AUROC: ours | plain DeLong | AUPRC: ours | percentile bootstrap |",
              "|---|---|---|---|---|"]
    for name, c in res.get("interval_methods", {}).items():
        cell = lambda k: f"{_pct(c[k]['covers'])} (width {c[k]['median_width']:.2f}" + (
            f", {c[k]['zero_width']} of width 0)" if c[k]["zero_width"] else ")")
        lines.append(f"| {name} | {cell('auroc')} | {cell('auroc_plain_delong')} | {cell('auprc')} | "
                     f"{cell('auprc_percentile')} |")
    return "\n".join(lines)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-probe", action="store_true", help="simulated data only (no model)")
    parser.add_argument("--markdown", action="store_true", help="print the tables of a saved results file")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    if args.markdown:
        print(markdown(json.loads(RESULTS[mode].read_text())))
        return 0
    cfg = dict(PROFILE[mode])
    if args.no_probe:
        cfg["probe_repeats"] = 0
    started = time.time()
    command = "python -m bench.sections.operating_point" + (" --quick" if args.quick else "") + \
        (" --no-probe" if args.no_probe else "")
    head = {"mode": mode, "command": command, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "code": git_state(), "load_avg_at_start": load_avg()}

    def save(partial: dict, done: bool = False) -> None:
        write_json(RESULTS[mode], {**head, "operating_point": partial, "partial": not done,
                             "seconds": round(time.time() - started)})

    result = run(cfg, checkpoint=save)
    save(result, done=True)
    print(json.dumps({k: v for k, v in result.items() if k != "probe"}, indent=1)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
