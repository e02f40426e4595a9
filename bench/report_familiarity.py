"""Tables of the "unlike your training data" section (bench/sections/familiarity.py) for docs/benchmarks.md."""
from __future__ import annotations

NAMES = {"knn": "k-NN distance (k = 5, unit-length features)", "mahalanobis": "Mahalanobis (Ledoit-Wolf covariance)",
         "knn, classifier input": "k-NN on the classifier layer's input (BERT pooler)",
         "mahalanobis, classifier input": "Mahalanobis on the classifier layer's input (BERT pooler)"}


def _rate(r: dict) -> str:
    if not r or r.get("rate") is None:
        return "–"
    lo, hi = r["ci"]
    return f"{r['rate']:.0%} ({r['flagged']}; {lo:.0%}–{hi:.0%})"


def familiarity(sec: dict) -> list[str]:
    out = ["### Unlike the training data: flag rates and which score separates better\n",
           "Flagged: share of inputs above the score's threshold, the 99th percentile of held-out scores: the "
           "validation examples' (and, for k-NN, each training example's leave-one-out score) "
           "(count; Wilson 95% interval). AUROC: held-out inputs of the training kind against that other kind "
           "(1 = fully separated, 0.5 = no better than chance).\n"]
    for modality in ("image", "text"):
        for strategy, rec in (sec.get(modality) or {}).items():
            if "error" in rec:
                out.append(f"* {modality} / {strategy}: failed — {rec['error']}\n")
                continue
            out.append(f"**{modality}, {strategy}** (trained on {rec.get('training_data')}, {rec['n_train']} training "
                       f"examples, {rec['n_threshold']} validation examples; the export ships "
                       f"`{rec['shipped_method']}`)\n")
            methods = list(rec["methods"])
            out.append("| inputs | n | flagged by the shipped flag (`predict`) | "
                       + " | ".join(f"{NAMES.get(m, m)}: flagged, AUROC" for m in methods) + " |")
            out.append("|---|---|---|" + "---|" * len(methods))
            for name, g in rec["groups"].items():
                cells = []
                for m in methods:
                    row = rec["methods"][m]["groups"].get(name, {})
                    auroc = row.get("auroc_vs_heldout")
                    cells.append(_rate(row) + (f", {auroc:.3f}" if auroc is not None else ""))
                out.append(f"| {name} | {g['n']} | {_rate(g)} | " + " | ".join(cells) + " |")
            out.append("| **all other kinds** | | | " + " | ".join(
                f"{_rate(rec['methods'][m].get('flag_rate_all_other_kinds'))}, "
                f"{rec['methods'][m].get('auroc_all_other_kinds', float('nan')):.3f}" for m in methods) + " |")
            out.append("")
    return out
