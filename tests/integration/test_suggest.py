"""`python -m tl_ui suggest` (issue 41) on a small pool of the sample digits: the model asks for the items
it learns most from, through the service and an inference worker, as the page does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tl_ui.data import load_dataset, sample_dataset_path

REPO = Path(__file__).resolve().parents[2]
CLASSES = ("0", "1", "7")
PER_CLASS = 8
LABELLED_PER_CLASS = 3


def make_pool(tmp_path):
    """A flat folder of 24 digits (names reveal no class) and the true label of each."""
    digits = load_dataset(str(sample_dataset_path("image")), tmp_path / "unpacked")
    pool = tmp_path / "pool"
    pool.mkdir()
    truth = {}
    for cls in CLASSES:
        for path in [p for p, label in zip(digits.items, digits.labels) if label == cls][:PER_CLASS]:
            shutil.copyfile(path, pool / Path(path).name)
            truth[Path(path).name] = cls
    return pool, truth


def suggest(*args, runs_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TL_RUNS_DIR": str(runs_dir), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "tl_ui", "suggest", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_suggestions_exclude_labelled_items_are_best_first_and_guess_better_than_the_majority(tmp_path):
    """Two calls (each starts a worker and loads the model: about a minute on a busy 2-core machine)."""
    pool, truth = make_pool(tmp_path)
    labelled = {name: label for cls in CLASSES
                for name, label in [kv for kv in truth.items() if kv[1] == cls][:LABELLED_PER_CLASS]}
    labels = tmp_path / "labels.csv"
    labels.write_text("item,label\n" + "".join(f"{k},{v}\n" for k, v in labelled.items()), encoding="utf-8")
    n = len(truth) - len(labelled)

    done = suggest("--pool", pool, "--labels", labels, "--n", n, "--json", "--curve", runs_dir=tmp_path / "runs")
    rows = json.loads(done.stdout)
    assert len(rows) == n and all(set(row) == {"item", "score", "reason", "guess"} for row in rows)
    items = [row["item"] for row in rows]
    assert len(set(items)) == n and set(items) == set(truth) - set(labelled)
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(row["reason"].endswith(".") and row["guess"] in CLASSES for row in rows)
    right = sum(row["guess"] == truth[row["item"]] for row in rows) / n
    majority = max(sum(truth[i] == c for i in items) for c in CLASSES) / n
    assert right > majority, (right, majority)
    assert "labels: accuracy" in done.stderr and "(95% interval" in done.stderr      # the learning curve

    # nothing labelled yet: diversity alone, said so, no guess; the pool's embeddings come from the cache
    done = suggest("--pool", pool, "--n", 3, runs_dir=tmp_path / "runs")
    assert "Reusing 24 embeddings" in done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3 and all("no guess yet" in line for line in lines)
    assert "Nothing is labelled yet" in lines[0]


def test_bad_input_says_what_to_do(tmp_path):
    pool, _ = make_pool(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TL_RUNS_DIR": str(tmp_path / "runs")}
    done = subprocess.run([sys.executable, "-m", "tl_ui", "suggest", "--pool", str(pool), "--labels",
                           str(tmp_path / "missing.csv"), "--n", "3"], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
