"""The label store (issue 41): labels.csv written atomically as each label is given."""
from __future__ import annotations

import csv

import pytest

from tl_ui.data import DataError
from tl_ui.data.label_store import COLUMNS, LabelStore, read_labels_table

POOL = ["a/1.png", "a/2.png", "b/3.png", "=cmd.png"]


def rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_each_label_is_on_disk_at_once_and_a_new_store_reads_it_back(tmp_path):
    path = tmp_path / "owner" / "labelling" / "labels.csv"
    store = LabelStore(path)
    store.add("a/1.png", "cat", "ana", pool=POOL, classes=["cat", "dog"])
    assert [r["item"] for r in rows(path)] == ["a/1.png"]           # written before add() returned
    store.add("b/3.png", "dog", "ana", pool=POOL, classes=["cat", "dog"])
    store.add("a/2.png", "", "ana", pool=POOL)                       # not sure
    assert list(rows(path)[0]) == list(COLUMNS)
    again = LabelStore(path)                                         # a restarted server
    assert again.given() == {"a/1.png": "cat", "b/3.png": "dog"}
    assert again.set_aside() == ["a/2.png"]
    assert rows(path)[0]["by"] == "ana" and rows(path)[0]["labelled_at"].endswith("Z")
    assert not list(path.parent.glob("*.tmp"))


def test_undo_removes_the_last_and_relabelling_replaces(tmp_path):
    store = LabelStore(tmp_path / "labels.csv")
    store.add("a/1.png", "cat")
    store.add("b/3.png", "dog")
    store.add("a/1.png", "dog")                                      # changed its mind: moves to the end
    assert list(store.given().items()) == [("b/3.png", "dog"), ("a/1.png", "dog")]
    assert store.undo().item == "a/1.png"
    assert LabelStore(tmp_path / "labels.csv").given() == {"b/3.png": "dog"}
    store.undo()
    assert store.undo() is None and len(store) == 0


def test_names_are_checked_before_anything_is_stored(tmp_path):
    store = LabelStore(tmp_path / "labels.csv")
    with pytest.raises(DataError, match="not an item of the pool"):
        store.add("../../etc/passwd", "cat", pool=POOL)
    with pytest.raises(DataError, match="not one of the classes"):
        store.add("a/1.png", "bird", pool=POOL, classes=["cat", "dog"])
    with pytest.raises(DataError, match="control character"):
        store.add("a/1.png\nx", "cat")
    assert len(store) == 0 and not (tmp_path / "labels.csv").exists()


def test_export_is_item_label_of_confirmed_labels_safe_for_spreadsheets(tmp_path):
    store = LabelStore(tmp_path / "labels.csv")
    store.add("=cmd.png", "cat")
    store.add("a/2.png", "")
    assert store.export_csv().splitlines() == ["item,label", "'=cmd.png,cat"]
    assert LabelStore(tmp_path / "labels.csv").given() == {"=cmd.png": "cat"}   # the store keeps the name itself


def test_a_labels_table_brought_along(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("Item,Label\na/1.png,cat\nelsewhere.png,dog\nb/3.png,dog\n", encoding="utf-8")
    labels, warnings = read_labels_table(path, pool=POOL)
    assert labels == {"a/1.png": "cat", "b/3.png": "dog"}
    assert "1 labelled item(s) are not in the pool" in warnings[0]
    path.write_text("name,class\nx,y\n", encoding="utf-8")
    with pytest.raises(DataError, match="needs the columns 'item' and 'label'"):
        read_labels_table(path)
