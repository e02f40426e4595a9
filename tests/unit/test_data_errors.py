"""Every bad input gives a DataError with a specific, plain message and writes nothing outside
the upload's working folder."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.data_factories import (class_entries, huge_png_header, image_zip, load_expecting_error,
                            mark_encrypted, png_bytes, text_rows, write_csv, write_tree, zip_of)
from tl_ui.data import DataError, Limits
from tl_ui.data.zips import ZipContents, _extract

TWO_CLASSES = {"benign": 3, "malignant": 3}


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# -- paths and file types -------------------------------------------------------------------

def test_path_not_found(tmp_path):
    message, _ = load_expecting_error(tmp_path, tmp_path / "nowhere" / "scans.zip")
    assert message == "Could not find 'scans.zip'. Check that the file or folder exists and try again."


def test_unsupported_extension(tmp_path):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4 not really")
    message, _ = load_expecting_error(tmp_path, pdf)
    assert message.startswith("Transfer Lab cannot read 'report.pdf' ('.pdf' files).")
    assert "CSV, TSV or Excel" in message


def test_old_excel_format(tmp_path):
    xls = tmp_path / "notes.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    message, _ = load_expecting_error(tmp_path, xls)
    assert message.startswith("'notes.xls' is an old-style Excel file (.xls).")


def test_single_image_upload(tmp_path):
    image = tmp_path / "scan.png"
    image.write_bytes(png_bytes())
    message, _ = load_expecting_error(tmp_path, image)
    assert message.startswith("'scan.png' is a single image.")


def test_upload_too_large_is_checked_before_reading(tmp_path):
    # Not even a zip: the size check must fire before anything looks inside.
    big = tmp_path / "huge.zip"
    big.write_bytes(b"x" * 5000)
    message, workdir = load_expecting_error(tmp_path, big, limits=Limits(max_upload_bytes=1000))
    assert message.startswith("The file 'huge.zip' is 4.9 KB; Transfer Lab accepts uploads up to 1000 bytes.")
    assert not files_in(workdir)


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "scans.zip"
    empty.write_bytes(b"")
    message, _ = load_expecting_error(tmp_path, empty)
    assert message.startswith("The file 'scans.zip' is empty (0 bytes).")


# -- zips -----------------------------------------------------------------------------------

def test_empty_zip(tmp_path):
    message, workdir = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", {}))
    assert message.startswith("The zip 'scans.zip' is empty: it contains no files.")
    assert not files_in(workdir)


def test_zip_with_only_system_junk_is_empty(tmp_path):
    path = zip_of(tmp_path / "scans.zip", {"__MACOSX/._a.png": b"x", ".DS_Store": b"x",
                                           "Thumbs.db": b"x"})
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("The zip 'scans.zip' is empty: it contains no files.")


def test_not_a_zip(tmp_path):
    fake = tmp_path / "scans.zip"
    fake.write_text("these are my notes, not a zip\n")
    message, _ = load_expecting_error(tmp_path, fake)
    assert message.startswith("The file 'scans.zip' is not a zip archive, although its name ends in .zip.")


def test_truncated_zip(tmp_path):
    good = image_zip(tmp_path / "full.zip", TWO_CLASSES)
    cut = tmp_path / "scans.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    message, workdir = load_expecting_error(tmp_path, cut)
    assert message.startswith("The zip 'scans.zip' is damaged or incomplete (perhaps the upload "
                              "or download was cut off).")
    assert not files_in(workdir)


def test_corrupted_zip_entry(tmp_path):
    path = image_zip(tmp_path / "scans.zip", TWO_CLASSES)
    data = bytearray(path.read_bytes())
    data[100:140] = b"\x00" * 40          # inside the first entry's compressed bytes
    path.write_bytes(bytes(data))
    message, workdir = load_expecting_error(tmp_path, path)
    assert message.startswith("The zip 'scans.zip' is damaged: the entry 'benign/img_000.png' "
                              "could not be unpacked.")
    assert not files_in(workdir)   # the partial extraction is removed


@pytest.mark.parametrize("evil", ["../escaped.png", "benign/../../escaped.png",
                                  "/tmp/tl_zip_slip_escaped.png", "C:/escaped.png",
                                  "..\\escaped.png"])
def test_zip_slip_refuses_whole_upload(tmp_path, evil):
    entries = class_entries(TWO_CLASSES)
    entries[evil] = png_bytes(99)
    path = zip_of(tmp_path / "scans.zip", entries)
    message, workdir = load_expecting_error(tmp_path, path)
    assert message.startswith(f"The zip 'scans.zip' contains an unsafe entry ('{evil}') that "
                              "points outside the zip's own folder. Nothing was unpacked.")
    assert not files_in(workdir)            # not even the safe entries were extracted
    assert not Path("/tmp/tl_zip_slip_escaped.png").exists()
    assert not (tmp_path / "escaped.png").exists()


def test_zip_bomb_declared_size(tmp_path):
    # 3 MB of zeros deflates to a few KB; the central directory still declares 3 MB.
    entries = class_entries(TWO_CLASSES)
    entries["benign/zeros.png"] = b"\x00" * (3 * 1024 * 1024)
    path = zip_of(tmp_path / "bomb.zip", entries)
    assert path.stat().st_size < 100_000
    limits = Limits(max_uncompressed_bytes=1024 * 1024)
    message, workdir = load_expecting_error(tmp_path, path, limits=limits)
    assert message.startswith("The zip 'bomb.zip' would unpack to more than 1.0 MB (it declares 3.0 MB); "
                              "Transfer Lab refuses it to protect the server.")
    assert not files_in(workdir)


def test_zip_bomb_file_count(tmp_path):
    path = zip_of(tmp_path / "many.zip", {f"benign/{i}.png": b"" for i in range(30)})
    message, workdir = load_expecting_error(tmp_path, path, limits=Limits(max_files=20))
    assert message.startswith("The zip 'many.zip' contains 30 entries; Transfer Lab accepts at most "
                              "20 files per upload.")
    assert not files_in(workdir)


def test_extraction_counts_the_bytes_it_writes(tmp_path):
    # Declared sizes are checked first; while extracting, the bytes really written are counted
    # too, in case a zip's declared sizes lie. Exercise that second guard directly.
    path = image_zip(tmp_path / "scans.zip", TWO_CLASSES)
    dest = tmp_path / "work" / "unzipped"
    dest.mkdir(parents=True)
    with zipfile.ZipFile(path) as archive:
        from pathlib import PurePosixPath
        files = [(info, PurePosixPath(info.filename)) for info in archive.infolist()]
        with pytest.raises(DataError, match="would unpack to more than 1000 bytes;"):
            _extract(archive, ZipContents(files, 0), dest, "scans.zip",
                     Limits(max_uncompressed_bytes=1000))


def test_password_protected_zip(tmp_path):
    path = mark_encrypted(image_zip(tmp_path / "scans.zip", TWO_CLASSES))
    message, _ = load_expecting_error(tmp_path, path)
    assert message == ("The zip 'scans.zip' is password-protected. Create it again without a "
                       "password and upload it.")


def test_single_class(tmp_path):
    path = image_zip(tmp_path / "scans.zip", {"benign": 6}, top="scans")
    message, _ = load_expecting_error(tmp_path, path)
    assert message == ("The zip 'scans.zip' has only one class folder ('benign'). Add at least one "
                       "more folder of images, one folder per label.")


def test_single_class_without_top_folder(tmp_path):
    path = image_zip(tmp_path / "scans.zip", {"benign": 6})
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("The zip 'scans.zip' has only one class folder ('benign').")


def test_class_with_one_example(tmp_path):
    path = image_zip(tmp_path / "scans.zip", {"benign": 6, "malignant": 1})
    message, _ = load_expecting_error(tmp_path, path)
    assert message == (
        "The class folder 'malignant' in 'scans.zip' has only 1 image. Each label needs at least "
        "2 examples (20 or more is better) so that some can be held back to check the model. "
        "Add images to that folder or remove it."
    )


def test_corrupt_image_is_named(tmp_path):
    entries = class_entries(TWO_CLASSES, top="scans")
    good = entries["scans/benign/img_001.png"]
    entries["scans/benign/img_001.png"] = good[: len(good) // 2]        # truncated PNG
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert message == (
        "The image 'scans/benign/img_001.png' in 'scans.zip' is damaged or not a real image file "
        "(it could not be read). Remove it or replace it with a good copy, then upload again."
    )


def test_text_file_named_png(tmp_path):
    entries = class_entries(TWO_CLASSES)
    entries["malignant/notes.png"] = b"just some text"
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert message.startswith("The image 'malignant/notes.png' in 'scans.zip' is damaged or not a "
                              "real image file")


def test_decompression_bomb_image(tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    entries = class_entries(TWO_CLASSES)
    entries["benign/huge.png"] = huge_png_header(30_000, 30_000)     # 900 megapixels, 100 bytes
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert message == (
        "The image 'benign/huge.png' in 'scans.zip' is too large (900 megapixels): Transfer Lab "
        "accepts images up to 40 megapixels, to protect the server. Shrink it (most photo tools "
        "can resize to 2000 pixels a side) or remove it."
    )
    assert Image.MAX_IMAGE_PIXELS == before   # the per-call limit was restored


def test_image_over_a_custom_pixel_limit(tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    path = image_zip(tmp_path / "scans.zip", TWO_CLASSES, size=(200, 200))
    message, _ = load_expecting_error(tmp_path, path, limits=Limits(max_image_pixels=10_000))
    # 40,000 pixels is past Pillow's own hard stop (twice the limit): DecompressionBombError.
    assert message.startswith("The image 'benign/img_000.png' in 'scans.zip' is too large (40,000 "
                              "pixels): Transfer Lab accepts images up to 10,000 pixels")
    assert Image.MAX_IMAGE_PIXELS == before


def test_only_unsupported_files(tmp_path):
    entries = {"benign/a.docx": b"PK doc", "malignant/b.docx": b"PK doc"}
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert message.startswith("The zip 'scans.zip' contains no images (found 'benign/a.docx', "
                              "'malignant/b.docx'). Transfer Lab reads")


def test_mixed_images_and_text_files(tmp_path):
    entries = class_entries(TWO_CLASSES)
    entries["benign/notes.txt"] = b"patient notes"
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert message.startswith("The zip 'scans.zip' mixes images (6 files) and text files (1 file, "
                              "e.g. 'benign/notes.txt'). Transfer Lab learns from one kind of data "
                              "at a time")


def test_zip_of_text_files(tmp_path):
    entries = {f"{label}/{i}.txt": b"words" for label in ("pos", "neg") for i in range(3)}
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "texts.zip", entries))
    assert message.startswith("The zip 'texts.zip' contains text files (e.g. 'neg/0.txt'), not "
                              "images. For text, upload a CSV or Excel table")


def test_images_without_class_folders(tmp_path):
    entries = {f"img_{i}.png": png_bytes(i) for i in range(4)}
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert message.startswith("The zip 'scans.zip' has images but no class folders.")


def test_train_test_folders(tmp_path):
    entries = class_entries(TWO_CLASSES, top="train")
    entries.update(class_entries(TWO_CLASSES, top="test", start_seed=50))
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert message.startswith("The zip 'scans.zip' is already split into 'test', 'train' folders.")


def test_folder_with_one_class(tmp_path):
    root = write_tree(tmp_path / "scans", class_entries({"benign": 4}))
    message, _ = load_expecting_error(tmp_path, root)
    assert message.startswith("The folder 'scans' has only one class folder ('benign').")


# -- tables ---------------------------------------------------------------------------------

def test_empty_csv(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("\n\n  \n")
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("The file 'notes.csv' is empty. Save your table with a header row")


def test_csv_with_header_only(tmp_path):
    path = write_csv(tmp_path / "notes.csv", ["text", "label"], [])
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("The file 'notes.csv' has column names but no rows of data.")


def test_csv_without_label_column(tmp_path):
    rows = [[f"note number {i} about the patient", f"id-{i}"] for i in range(8)]
    path = write_csv(tmp_path / "notes.csv", ["text", "record"], rows)
    message, _ = load_expecting_error(tmp_path, path)
    assert message == (
        "The file 'notes.csv' has no column that looks like a label (a column with a few repeated "
        "values, such as 'positive'/'negative'). Name that column 'label' or pick it by name. "
        "Columns found: 'text', 'record'."
    )


def test_csv_without_text_column(tmp_path):
    rows = [[str(i), str(i * 3), "yes" if i % 2 else "no"] for i in range(8)]
    path = write_csv(tmp_path / "scores.csv", ["age", "score", "label"], rows)
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("The file 'scores.csv' has no column that looks like text. Name the "
                              "column that holds the texts 'text' or pick it by name.")


def test_asked_for_column_missing(tmp_path):
    path = write_csv(tmp_path / "notes.csv", ["text", "label"], text_rows())
    message, _ = load_expecting_error(tmp_path, path, label_column="diagnosis")
    assert message == ("The file 'notes.csv' has no column named 'diagnosis' (asked for as the "
                       "label). Its columns are: 'text', 'label'.")


def test_csv_with_single_label(tmp_path):
    rows = [[f"note {i}", "benign"] for i in range(6)]
    path = write_csv(tmp_path / "notes.csv", ["text", "label"], rows)
    message, _ = load_expecting_error(tmp_path, path)
    assert message == ("Every row of 'notes.csv' has the same label ('benign' in column 'label'). "
                       "Add rows with at least one other label: the model needs two or more "
                       "labels to choose between.")


def test_csv_label_with_one_row(tmp_path):
    rows = text_rows(4) + [["a lone example", "neutral"]]
    path = write_csv(tmp_path / "notes.csv", ["text", "label"], rows)
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("The label 'neutral' (column 'label' in 'notes.csv') appears in only "
                              "1 row (row 10).")


def test_csv_empty_labels_name_spreadsheet_rows(tmp_path):
    rows = text_rows(4)
    rows[2][1] = ""     # spreadsheet row 4 (header is row 1)
    rows[5][1] = "  "   # row 7
    path = write_csv(tmp_path / "notes.csv", ["text", "label"], rows)
    message, _ = load_expecting_error(tmp_path, path)
    assert message == ("Rows 4 and 7 of 'notes.csv' have an empty label (column 'label'). Fill them "
                       "in or delete those rows, then upload again.")


def test_csv_empty_text(tmp_path):
    rows = text_rows(4)
    rows[0][0] = ""
    path = write_csv(tmp_path / "notes.csv", ["text", "label"], rows)
    message, _ = load_expecting_error(tmp_path, path)
    assert message == ("Row 2 of 'notes.csv' has an empty text (column 'text'). Fill it in or "
                       "delete that row, then upload again.")


def test_one_column_file_names_its_separator(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("text:label\n" + "".join(f"note {i}:{'a' if i % 2 else 'b'}\n" for i in range(8)))
    message, _ = load_expecting_error(tmp_path, path)
    assert message == ("The file 'notes.csv' has only one column ('text:label'). Transfer Lab needs "
                       "two: one with the text (or image file name) and one with the label. It "
                       "looks like it uses ':' between columns; save it as CSV with commas (or as "
                       "TSV with tabs) and upload it again.")


def test_ragged_csv_row(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("text,label\ngood film,pos\ngreat, really great,pos\nbad film,neg\n")
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("Row 3 of 'notes.csv' has 3 cells but the header row has 2 (cells "
                              "are separated by a comma).")


def test_unclosed_quote(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('text,label\ngood film,pos\n"bad film,neg\nok film,pos\n')
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("Row 3 of 'notes.csv' opens a double quote (\") that is never closed.")


@pytest.mark.parametrize("payload, looks", [
    (png_bytes(), "it looks like a PNG image"),
    (b"PK\x03\x04" + b"\x00" * 200, "it looks like an Excel workbook or a zip archive"),
    (b"\x01\x02\x00\x00\xff" * 100, "it contains binary data"),
])
def test_binary_file_renamed_csv(tmp_path, payload, looks):
    path = tmp_path / "notes.csv"
    path.write_bytes(payload)
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("The file 'notes.csv' is not a text table, although its name ends in "
                              f"'.csv': {looks}. Open it in your spreadsheet program")


def test_damaged_excel(tmp_path):
    path = tmp_path / "notes.xlsx"
    path.write_text("text,label\nsaved as csv but named xlsx,pos\n")
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("The file 'notes.xlsx' could not be opened as an Excel workbook")


def test_too_many_rows(tmp_path):
    path = write_csv(tmp_path / "notes.csv", ["text", "label"], text_rows(10))
    message, _ = load_expecting_error(tmp_path, path, limits=Limits(max_rows=12))
    assert message.startswith("The file 'notes.csv' has more than 12 rows; Transfer Lab accepts at "
                              "most that many.")


def test_image_table_path_escaping_its_folder(tmp_path):
    folder = tmp_path / "upload"
    write_tree(folder, class_entries(TWO_CLASSES))
    (tmp_path / "secret.png").write_bytes(png_bytes(77))
    rows = [[f"benign/img_00{i}.png", "benign"] for i in range(3)]
    rows += [[f"malignant/img_00{i}.png", "malignant"] for i in range(2)] + [["../secret.png", "malignant"]]
    path = write_csv(folder / "labels.csv", ["path", "label"], rows)
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("Row 7 of 'labels.csv' points outside the table's folder "
                              "('../secret.png').")


def test_image_table_missing_files(tmp_path):
    folder = write_tree(tmp_path / "upload", class_entries(TWO_CLASSES))
    rows = [[f"benign/img_00{i}.png", "benign"] for i in range(3)]
    rows += [["malignant/img_000.png", "malignant"], ["malignant/gone.png", "malignant"],
             ["malignant/lost.png", "malignant"]]
    path = write_csv(folder / "labels.csv", ["file", "class"], rows)
    message, _ = load_expecting_error(tmp_path, path)
    assert message.startswith("Rows 6 and 7 of 'labels.csv' name image files that do not exist "
                              "(e.g. 'malignant/gone.png').")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_just_over_the_pixel_limit(tmp_path):
    # Between the limit and twice it Pillow only warns; the loader's own check refuses it.
    path = image_zip(tmp_path / "scans.zip", TWO_CLASSES, size=(110, 100))
    message, _ = load_expecting_error(tmp_path, path, limits=Limits(max_image_pixels=10_000))
    assert message.startswith("The image 'benign/img_000.png' in 'scans.zip' is too large (110x100 "
                              "pixels): Transfer Lab accepts images up to 10,000 pixels")


def test_one_column_file(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("review\n" + "".join(f"note {i}\n" for i in range(6)))
    message, _ = load_expecting_error(tmp_path, path)
    assert message == ("The file 'notes.csv' has only one column ('review'). Transfer Lab needs two: "
                       "one with the text (or image file name) and one with the label. Check that "
                       "the header row names both columns, for example 'text,label'.")
