"""DICOM and 16-bit images, read from real files (pydicom's own test data), without leaking
patient identifiers into items, labels, warnings, messages or previews."""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, PngImagePlugin

from tests.helpers.data_factories import (class_entries, dicom_bytes, dicom_class_entries, dicom_identifiers,
                            dicom_test_file, dicom_zip, load_expecting_error, png16_bytes,
                            write_csv, write_tree, zip_of)
from tl_ui.data import DataError, load_dataset
from tl_ui.data.dicom import WINDOW_PRESETS, read_dicom
from tl_ui.data.images import image_reading_note, is_image_file, read_image, save_preview_png
from tl_ui.engine.models.inputs import open_image

SECRETS = dicom_identifiers("CT_small.dcm", "MR_small.dcm", "rtstruct.dcm", "reportsi.dcm",
                            "SC_rgb_rle_2frame.dcm", "MR_small_jpeg_ls_lossless.dcm",
                            "SC_rgb_jpeg_gdcm.dcm", "rtdose_1frame.dcm")


def leaks(texts) -> list[str]:
    return [s for s in SECRETS for t in texts if s in str(t)]


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 'LINEAR' to 0..255, written out independently of the code under test."""
    c, w = center - 0.5, width - 1
    out = ((values - c) / w + 0.5) * 255
    out = np.where(values <= c - w / 2, 0, np.where(values > c + w / 2, 255, out))
    return np.clip(np.rint(out), 0, 255)


def hounsfield(name: str) -> np.ndarray:
    ds = pydicom.dcmread(dicom_test_file(name))
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


# -- reading single files -------------------------------------------------------------------

def test_ct_slice_is_rescaled_to_hounsfield_units_then_windowed():
    hu = hounsfield("CT_small.dcm")
    assert hu.min() < -800 and hu.max() > 1000           # really HU: air and bone
    for preset in ("soft_tissue", "lung", "bone"):
        image = read_dicom(dicom_test_file("CT_small.dcm"), window=preset)
        expected = linear_window(hu, *WINDOW_PRESETS[preset])
        assert np.abs(image.pixels.astype(int) - expected).max() <= 1, preset
        assert image.window == preset and (image.center, image.width) == WINDOW_PRESETS[preset]
    # No window in this file's header: the 0.5-99.5 percentile range of the HU values.
    auto = read_dicom(dicom_test_file("CT_small.dcm"))
    assert auto.window == "auto" and auto.n_frames == 1
    lo, hi = np.percentile(hu, [0.5, 99.5])
    assert auto.center == pytest.approx((lo + hi) / 2) and auto.width == pytest.approx(hi - lo)
    pixels = auto.pixels
    assert pixels.dtype == np.uint8 and pixels.shape == (128, 128)
    assert pixels.min() == 0 and pixels.max() == 255 and 40 < pixels.mean() < 215
    assert len(np.unique(pixels)) > 100
    assert (pixels == 0).mean() < 0.05 and (pixels == 255).mean() < 0.05


def test_mr_slice_uses_the_header_window():
    ds = pydicom.dcmread(dicom_test_file("MR_small.dcm"))
    image = read_dicom(dicom_test_file("MR_small.dcm"))
    assert image.window == "header" and (image.center, image.width) == (600, 1600)
    expected = linear_window(ds.pixel_array.astype(np.float64), 600, 1600)
    assert np.abs(image.pixels.astype(int) - expected).max() <= 1
    assert 30 < image.pixels.mean() < 225 and len(np.unique(image.pixels)) > 50


def test_a_preset_overrides_the_header_and_unknown_presets_are_refused():
    header = read_dicom(dicom_test_file("MR_small.dcm")).pixels
    brain = read_dicom(dicom_test_file("MR_small.dcm"), window="brain").pixels
    assert not np.array_equal(header, brain)
    assert set(WINDOW_PRESETS) == {"header", "soft_tissue", "lung", "bone", "brain"}
    assert np.array_equal(read_dicom(dicom_test_file("MR_small.dcm"), window="header").pixels, header)
    with pytest.raises(ValueError):
        read_dicom(dicom_test_file("MR_small.dcm"), window="liver")


def test_compressed_files_decode_through_pydicoms_plugins():
    plain = read_dicom(dicom_test_file("MR_small.dcm")).pixels
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"):   # RLE: numpy; J2K: Pillow
        assert np.array_equal(read_dicom(dicom_test_file(name)).pixels, plain), name


def test_monochrome1_is_inverted(tmp_path):
    mono2 = write_tree(tmp_path, {"m2.dcm": dicom_bytes("MR_small.dcm")}) / "m2.dcm"
    mono1 = write_tree(tmp_path, {"m1.dcm": dicom_bytes(
        "MR_small.dcm", PhotometricInterpretation="MONOCHROME1")}) / "m1.dcm"
    assert np.array_equal(read_dicom(mono1).pixels, 255 - read_dicom(mono2).pixels)
    # Also without a header window (percentile range), and through the engine's reader.
    no_window = {"WindowCenter": None, "WindowWidth": None}
    a = write_tree(tmp_path, {"a.dcm": dicom_bytes("CT_small.dcm", **no_window)}) / "a.dcm"
    b = write_tree(tmp_path, {"b.dcm": dicom_bytes(
        "CT_small.dcm", PhotometricInterpretation="MONOCHROME1")}) / "b.dcm"
    assert np.array_equal(np.asarray(open_image(b)), 255 - np.asarray(open_image(a)))


def test_file_without_extension_is_recognised_by_its_marker(tmp_path):
    files = write_tree(tmp_path, {"IM0001": dicom_test_file("CT_small.dcm").read_bytes(),
                                  "NOTES": b"just some text, not an image" * 10,
                                  "DICOMDIR": dicom_test_file("CT_small.dcm").read_bytes()})
    assert is_image_file(files / "IM0001")
    assert not is_image_file(files / "NOTES")
    assert not is_image_file(files / "DICOMDIR")      # a CD's index, never an image
    image = open_image(str(files / "IM0001"))
    assert image.mode == "RGB" and image.size == (128, 128)
    assert np.array_equal(np.asarray(image)[..., 0], read_dicom(dicom_test_file("CT_small.dcm")).pixels)


def test_voi_lut_sequence_is_used_when_there_is_no_window(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(dicom_test_file("MR_small.dcm"))
    del ds.WindowCenter, ds.WindowWidth
    lut = Dataset()   # 12-bit output, doubling the stored value
    lut.add_new(0x00283002, "US", [4096, 0, 12])
    lut.add_new(0x00283006, "US", [min(4095, 2 * i) for i in range(4096)])
    ds.VOILUTSequence = Sequence([lut])
    ds.save_as(tmp_path / "voi.dcm")
    image = read_dicom(tmp_path / "voi.dcm")
    expected = np.rint(np.minimum(4095, 2 * ds.pixel_array.astype(float)) * 255 / 4095)
    assert image.window == "header" and np.abs(image.pixels - expected).max() <= 1


def test_multiframe_file_reads_the_middle_frame():
    ds = pydicom.dcmread(dicom_test_file("SC_rgb_rle_2frame.dcm"))
    image = read_dicom(dicom_test_file("SC_rgb_rle_2frame.dcm"))
    assert image.n_frames == 2 and image.pixels.shape == (100, 100, 3)
    assert np.array_equal(image.pixels, ds.pixel_array[1])


def test_missing_decoder_names_file_transfer_syntax_and_extra():
    from pydicom.pixels import get_decoder

    missing = [name for name in ("MR_small_jpeg_ls_lossless.dcm", "SC_rgb_jpeg_gdcm.dcm")
               if not get_decoder(pydicom.dcmread(dicom_test_file(name), stop_before_pixels=True)
                                  .file_meta.TransferSyntaxUID).is_available]
    if not missing:
        pytest.skip("every decoder is installed here: nothing is missing")
    name = missing[0]
    syntax = pydicom.dcmread(dicom_test_file(name), stop_before_pixels=True).file_meta.TransferSyntaxUID
    with pytest.raises(DataError) as info:
        read_dicom(dicom_test_file(name), name=f"scans/{name}")
    message = str(info.value)
    assert f"'scans/{name}'" in message and syntax.name in message
    assert 'pip install "tl_ui[dicom]"' in message
    assert not leaks([message]) and str(dicom_test_file(name).parent) not in message


@pytest.mark.parametrize("name, what", [("rtstruct.dcm", "RT Structure Set"),
                                        ("reportsi.dcm", "SR")])
def test_file_without_pixels_says_what_it_is(name, what):
    with pytest.raises(DataError) as info:
        read_dicom(dicom_test_file(name), name=f"case1/{name}")
    message = str(info.value)
    assert f"'case1/{name}'" in message and what in message and "no pixel data" in message
    assert not leaks([message])


def test_dicom_too_large_is_refused_before_decoding():
    with pytest.raises(DataError, match="too large"):
        read_dicom(dicom_test_file("CT_small.dcm"), max_pixels=1000)


# -- 16-bit PNG / TIFF -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_images_use_their_value_range(tmp_path, fmt):
    path = tmp_path / f"ramp.{fmt.lower()}"
    path.write_bytes(png16_bytes(peak=4000, fmt=fmt))
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")                       # really 16-bit
    pixels = np.asarray(read_image(path))
    assert pixels.dtype == np.uint8 and pixels.min() == 0 and pixels.max() == 255
    assert len(np.unique(pixels)) > 200                       # spread, not clipped at 255
    assert np.all(np.diff(pixels.astype(int).ravel()) >= 0)   # a ramp stays a ramp
    rgb = np.asarray(open_image(path))
    assert rgb.shape[-1] == 3 and np.array_equal(rgb[..., 0], pixels)
    assert image_reading_note([str(path)]) == {"dicom": False, "n_high_bit_depth": 1}


def test_16_bit_rgb_tiff_is_not_cut_to_its_high_byte(tmp_path):
    import tifffile
    ramp = np.linspace(0, 4000, 64 * 64).reshape(64, 64).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rgb.tif", np.stack([ramp, ramp // 2, ramp // 4], -1), photometric="rgb")
    pixels = np.asarray(open_image(tmp_path / "rgb.tif"))
    assert pixels.max() == 255 and len(np.unique(pixels[..., 0])) > 200


# -- datasets --------------------------------------------------------------------------------

def test_zip_of_dicom_class_folders_loads_as_two_class_image_dataset(tmp_path):
    workdir = tmp_path / "work"
    data = load_dataset(dicom_zip(tmp_path / "scans.zip", 5, top="export"), workdir)
    assert data.modality == "image" and data.class_counts() == {"ct": 5, "mr": 5}
    assert data.warnings == []
    assert sum(Path(item).suffix == "" for item in data.items) == 4   # extension-less ones kept
    assert all(Path(item).resolve().is_relative_to(workdir.resolve()) for item in data.items)
    for item, label in zip(data.items, data.labels):
        image = open_image(item)
        assert image.mode == "RGB" and image.size == ((128, 128) if label == "ct" else (64, 64))
    assert not leaks(data.items + data.labels + data.warnings + [str(data.summary())])
    note = image_reading_note(data.items)
    assert note == {"dicom": True, "n_dicom": 10, "window": "header", "window_values": None,
                    "n_multiframe": 0, "n_auto_window": 5, "n_high_bit_depth": 0}
    assert image_reading_note(data.items, window="lung")["window_values"] == [-600, 1500]


def test_dicom_warnings_name_files_but_no_patient(tmp_path):
    extra = {"ct/multi.dcm": dicom_test_file("SC_rgb_rle_2frame.dcm").read_bytes(),
             "mr/copy_of_first": dicom_bytes("MR_small.dcm", variant=1),      # same pixels
             "ct/dose.dcm": dicom_test_file("rtdose_1frame.dcm").read_bytes(),  # 10x10: tiny
             "mr/notes.txt.bak": b"not an image"}
    data = load_dataset(dicom_zip(tmp_path / "scans.zip", 5, extra=extra), tmp_path / "work")
    text = "\n".join(data.warnings)
    assert "'ct/multi.dcm'" in text and "middle frame" in text
    assert "exact cop" in text and "'mr/copy_of_first'" in text
    assert "smaller than" in text and "'ct/dose.dcm'" in text
    assert not leaks(data.items + data.labels + data.warnings)
    assert image_reading_note(data.items)["n_multiframe"] == 1


@pytest.mark.parametrize("extra, expected", [
    ({"ct/report.dcm": "reportsi.dcm"}, ["'ct/report.dcm'", "no pixel data"]),
    ({"mr/struct.dcm": "rtstruct.dcm"}, ["'mr/struct.dcm'", "RT Structure Set"]),
])
def test_dicom_errors_in_a_zip_name_the_member_not_the_patient(tmp_path, extra, expected):
    entries = dicom_class_entries(3)
    entries.update({k: dicom_test_file(v).read_bytes() for k, v in extra.items()})
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert all(e in message for e in expected) and "scans.zip" in message
    assert not leaks([message])


def test_compressed_member_without_decoder_fails_with_install_hint(tmp_path):
    from pydicom.pixels import get_decoder
    ts = pydicom.dcmread(dicom_test_file("MR_small_jpeg_ls_lossless.dcm"),
                         stop_before_pixels=True).file_meta.TransferSyntaxUID
    if get_decoder(ts).is_available:
        pytest.skip("the JPEG-LS decoder is installed here")
    entries = dicom_class_entries(3)
    entries["mr/jls.dcm"] = dicom_test_file("MR_small_jpeg_ls_lossless.dcm").read_bytes()
    message, _ = load_expecting_error(tmp_path, zip_of(tmp_path / "scans.zip", entries))
    assert "'mr/jls.dcm'" in message and ts.name in message and "tl_ui[dicom]" in message
    assert not leaks([message])


def test_image_table_of_dicom_paths(tmp_path):
    entries = dicom_class_entries(5, classes={"a": "CT_small.dcm", "b": "MR_small.dcm"})
    root = write_tree(tmp_path / "upload", {f"images/{k}": v for k, v in entries.items()})
    rows = [[f"images/{name}", name.split("/")[0]] for name in entries]
    write_csv(root / "labels.csv", ["path", "label"], rows)
    data = load_dataset(root / "labels.csv", tmp_path / "work", path_column="path")
    assert data.class_counts() == {"a": 5, "b": 5} and data.warnings == []
    # .dcm paths are found as the path column without being named
    only_dcm = [r for r in rows if r[0].endswith(".dcm")]
    write_csv(root / "labels.csv", ["file", "finding"], only_dcm)
    assert load_dataset(root / "labels.csv", tmp_path / "work").class_counts() == {"a": 3, "b": 3}


def test_single_dicom_upload_is_told_to_zip_folders(tmp_path):
    for name in ("scan.dcm", "IM0001"):
        path = tmp_path / name
        path.write_bytes(dicom_test_file("CT_small.dcm").read_bytes())
        message, _ = load_expecting_error(tmp_path, path)
        assert "single image" in message


def test_zip_of_extensionless_dicom_in_one_top_folder(tmp_path):
    entries = {k.replace(".dcm", ""): v for k, v in dicom_class_entries(2, top="PACS").items()}
    data = load_dataset(zip_of(tmp_path / "pacs.zip", entries), tmp_path / "work")
    assert data.class_counts() == {"ct": 2, "mr": 2}


def test_ordinary_images_read_as_before(tmp_path):
    root = write_tree(tmp_path, class_entries({"x": 1}, ext="jpg") | class_entries({"y": 1}))
    for path in (root / "x/img_000.jpg", root / "y/img_000.png"):
        with Image.open(path) as img:
            assert np.array_equal(np.asarray(open_image(path)), np.asarray(img.convert("RGB")))
    assert image_reading_note([str(p) for p in root.rglob("*.*")]) is None


# -- previews --------------------------------------------------------------------------------

def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kinds.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return kinds


def test_preview_png_has_pixels_only(tmp_path):
    tagged = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("PatientName", "CompressedSamples^CT1")
    info.add_itxt("PatientID", "1CT1")
    Image.new("RGB", (600, 300), "gray").save(tagged, format="PNG", pnginfo=info)
    sources = write_tree(tmp_path / "src", {
        "ct.dcm": dicom_test_file("CT_small.dcm").read_bytes(),
        "IM0002": dicom_bytes("MR_small.dcm"),
        "multi.dcm": dicom_test_file("SC_rgb_rle_2frame.dcm").read_bytes(),
        "ramp.png": png16_bytes(), "ramp.tif": png16_bytes(fmt="TIFF"),
        "tagged.png": tagged.getvalue(),
    })
    for src in sorted(sources.iterdir()):
        out = save_preview_png(src, tmp_path / "previews" / f"{src.name}.png", max_side=256)
        data = out.read_bytes()
        assert set(png_chunks(data)) <= {b"IHDR", b"PLTE", b"IDAT", b"IEND"}, src.name
        assert not leaks([data.decode("latin-1")]), src.name
        with Image.open(out) as img:
            assert max(img.size) <= 256 and img.mode in ("L", "RGB") and not img.info
            assert np.asarray(img).max() > 0
    with Image.open(tmp_path / "previews" / "tagged.png.png") as img:
        assert img.size == (256, 128)
    ct = np.asarray(Image.open(tmp_path / "previews" / "ct.dcm.png"))
    assert np.array_equal(ct, read_dicom(sources / "ct.dcm").pixels)   # windowed, not raw
    lung = save_preview_png(sources / "ct.dcm", tmp_path / "lung.png", window="lung")
    assert not np.array_equal(np.asarray(Image.open(lung)), ct)
