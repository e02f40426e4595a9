"""DICOM images: recognising them, reading one frame as 8-bit pixels, windowing, and messages.

Only pixel values and windowing numbers leave this module. Patient names, IDs, dates and every
other header field stay inside: messages name a file by the name it has inside the upload, and
the only header-derived words they use come from fixed vocabularies (pydicom's names for
transfer syntaxes and SOP classes, a sanitised Modality code). pydicom's own warnings and log
lines can quote header values, so they are kept out of the app's warnings and logs.
"""
from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .dataset import DataError

DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
# Dataset-level window presets (center, width) in Hounsfield units; "header" = the file's own.
WINDOW_PRESETS: dict[str, Optional[tuple[float, float]]] = {
    "header": None, "soft_tissue": (40, 400), "lung": (-600, 1500), "bone": (400, 1800),
    "brain": (40, 80),
}
AUTO_PERCENTILES = (0.5, 99.5)     # value range used when a file has no window of its own
INSTALL_EXTRA = 'pip install "tl_ui[dicom]"'
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# A DICOMDIR is the index of a DICOM CD, not an image.
INDEX_NAMES = frozenset({"dicomdir"})

_MAGIC_OFFSET, _MAGIC = 128, b"DICM"
_WHAT = {"SR": "a structured report", "RTSTRUCT": "an RT structure set", "RTPLAN": "an RT plan",
         "RTRECORD": "an RT treatment record", "ECG": "a waveform (ECG)", "KO": "a key-object note",
         "PR": "a presentation state", "DOC": "an encapsulated document", "REG": "a registration",
         "HD": "a waveform"}
# Modality codes (DICOM PS3.3 C.7.3.1.1.1) that a message may repeat; any other value is not shown.
_MODALITIES = frozenset(set(_WHAT) | {
    "AR", "AS", "ASMT", "AU", "BDUS", "BI", "BMD", "CR", "CT", "CTPROTOCOL", "DG", "DX", "ECG",
    "EPS", "ES", "FID", "GM", "HC", "IO", "IOL", "IVOCT", "IVUS", "KER", "LEN", "LS", "MG", "MR",
    "NM", "OAM", "OCT", "OP", "OPM", "OPT", "OPTBSV", "OPTENF", "OPV", "OSS", "OT", "PLAN", "PT",
    "PX", "RESP", "RF", "RG", "RTDOSE", "RTIMAGE", "RWV", "SEG", "SM", "SMR", "SRF", "STAIN",
    "TG", "US", "VA", "XA", "XC"})

logging.getLogger("pydicom").propagate = False
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


@dataclass
class DicomImage:
    """One frame, ready for the model: 8-bit pixels and how they were windowed."""
    pixels: np.ndarray              # uint8, (rows, cols) grey or (rows, cols, 3) RGB
    n_frames: int                   # frames in the file; the middle one was read
    window: str                     # "header", a preset name, "auto" (percentiles) or "colour"
    center: Optional[float] = None  # the window used, in the values after the modality LUT
    width: Optional[float] = None


def has_dicom_magic(path: str | Path) -> bool:
    """True when the file carries the 'DICM' marker after its 128-byte preamble."""
    try:
        with open(path, "rb") as fp:
            fp.seek(_MAGIC_OFFSET)
            return fp.read(4) == _MAGIC
    except OSError:
        return False


def is_dicom_path(path: str | Path, known_extensions: Iterable[str] = ()) -> bool:
    """A DICOM file by name (.dcm/.dicom) or, for other names, by its 'DICM' marker.

    Files whose extension is in `known_extensions` (PNG, CSV, ...) are never sniffed.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext in DICOM_EXTENSIONS:
        return True
    if ext in known_extensions or path.name.lower() in INDEX_NAMES:
        return False
    return has_dicom_magic(path)


def window_for(preset: Optional[str]) -> Optional[tuple[float, float]]:
    """(center, width) of a preset name; None for the header's own window."""
    if preset is None:
        return None
    if preset not in WINDOW_PRESETS:
        raise ValueError(f"Unknown window preset {preset!r}; choose one of {sorted(WINDOW_PRESETS)}.")
    return WINDOW_PRESETS[preset]


def read_dicom(path: str | Path, *, window: Optional[str] = None, name: Optional[str] = None,
               source: Optional[str] = None, max_pixels: Optional[int] = None) -> DicomImage:
    """Read the (middle) frame of a DICOM file as 8-bit pixels.

    Grey images go through the modality LUT (Rescale Slope/Intercept), then a window: the preset
    `window` when given (a key of WINDOW_PRESETS other than "header"), else the header's
    WindowCenter/WindowWidth (or VOI LUT), else the 0.5-99.5 percentile range of the values;
    MONOCHROME1 is inverted. `name` is how messages call the file (its path inside the upload);
    raises DataError for anything the user must fix.
    """
    preset = window_for(window)
    where = _where(path, name, source)
    ds = _open(path, where, header_only=False)
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if max_pixels is not None and rows * cols > max_pixels:
        raise DataError(
            f"The DICOM image {where} is too large ({cols}x{rows} pixels): Transfer Lab accepts "
            f"images up to {max_pixels:,} pixels, to protect the server. Remove it."
        )
    n_frames = max(1, _int(ds, "NumberOfFrames", 1))
    raw, n_frames = _decode(ds, where, n_frames)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    try:
        if raw.ndim == 3 or photometric.startswith(("RGB", "YBR", "PALETTE")):
            return DicomImage(_colour(raw, ds, photometric), n_frames, "colour")
        return _grey(raw, ds, photometric, n_frames, window, preset)
    except DataError:
        raise
    except Exception:   # noqa: BLE001 - any failure of the LUTs means a header we cannot use
        raise _damaged(where, "its pixel values could not be converted") from None


def dicom_reading_note(dataset_items: Iterable[object], window: Optional[str] = None,
                       known_extensions: Iterable[str] = ()) -> Optional[dict]:
    """How the DICOM images among `dataset_items` were read, for the model card; None if none.

    {"dicom": True, "n_dicom": n, "window": "header" | preset name, "window_values": [c, w] | None,
     "n_multiframe": k, "n_auto_window": m} - n_auto_window counts files read with the header
    setting that had no window of their own (scaled by the 0.5-99.5 percentile range).
    """
    preset = window_for(window)
    known = frozenset(known_extensions)
    n_dicom = n_multi = n_auto = 0
    for item in dataset_items:
        if not isinstance(item, (str, Path)) or not is_dicom_path(item, known):
            continue
        try:
            ds = _open(item, "", header_only=True)
        except DataError:
            continue
        n_dicom += 1
        n_multi += _int(ds, "NumberOfFrames", 1) > 1
        if preset is None and _header_window(ds) is None and not ds.get("VOILUTSequence"):
            n_auto += 1
    if not n_dicom:
        return None
    return {"dicom": True, "n_dicom": n_dicom, "window": window or "header",
            "window_values": list(preset) if preset else None, "n_multiframe": n_multi,
            "n_auto_window": n_auto}


def no_pixels_message(where: str, ds) -> str:
    """"The file 'a/b.dcm' is a DICOM RT Structure Set Storage (modality RTSTRUCT: an RT
    structure set) and holds no image (no pixel data). ..." - SOP class and Modality only."""
    try:
        sop = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
        modality = str(ds.get("Modality", "") or "").strip().upper()
    except Exception:   # noqa: BLE001 - an unreadable element: say less
        sop, modality = None, ""
    modality = modality if modality in _MODALITIES else ""
    kind = (_uid_words(sop) if sop else "") or (f"{modality} object" if modality else "file")
    extra = (f" (modality {modality}" + (f": {_WHAT[modality]})" if modality in _WHAT else ")")
             if modality else "")
    return (f"The file {where} is a DICOM {kind}{extra} and holds no image (no pixel data). "
            "Remove it from the upload, or export the images of the study instead.")


# -- internals ------------------------------------------------------------------------------

def _where(path: str | Path, name: Optional[str], source: Optional[str]) -> str:
    shown = name or Path(path).name
    return f"'{shown}' in '{source}'" if source and source != shown else f"'{shown}'"


def _open(path: str | Path, where: str, *, header_only: bool):
    import pydicom

    force = Path(path).suffix.lower() in DICOM_EXTENSIONS   # .dcm files may lack the preamble
    try:
        return pydicom.dcmread(path, force=force, stop_before_pixels=header_only)
    except Exception:   # noqa: BLE001 - pydicom raises many kinds on a broken file
        raise _damaged(where, "it is not a complete DICOM file") from None


def _decode(ds, where: str, n_frames: int) -> tuple[np.ndarray, int]:
    """(raw pixel array of the middle frame, frame count), or a DataError saying what is wrong."""
    if not any(k in ds for k in PIXEL_KEYWORDS):
        raise DataError(no_pixels_message(where, ds))
    ts = _transfer_syntax(ds)
    if ts is not None and ts.is_compressed:
        _need_decoder(ts, where)
    try:
        ds.pixel_array_options(index=n_frames // 2 if n_frames > 1 else None)
        arr = np.asarray(ds.pixel_array)
    except Exception:   # noqa: BLE001 - truncated or corrupt pixel data
        if ts is not None and ts.is_compressed:
            raise _undecodable(ts, where) from None
        raise _damaged(where, "its pixel data could not be decoded") from None
    if arr.ndim == (3 if _int(ds, "SamplesPerPixel", 1) > 1 else 2) + 1:
        # All frames came back (NumberOfFrames missing or unreadable): take the middle one.
        n_frames = arr.shape[0]
        arr = arr[n_frames // 2]
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
        raise _damaged(where, "its pixel data has an unexpected shape")
    return arr, n_frames


def _transfer_syntax(ds):
    from pydicom import uid

    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts is None:
        # Read without file meta (force=True): infer the plain encodings pydicom saw.
        implicit, little = getattr(ds, "original_encoding", (None, None))
        if implicit is None:
            return None
        ts = (uid.ImplicitVRLittleEndian if implicit else
              uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian)
        ds.ensure_file_meta()
        ds.file_meta.TransferSyntaxUID = ts
    return uid.UID(str(ts))


def _need_decoder(ts, where: str) -> None:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise DataError(
            f"The DICOM file {where} is compressed as '{_ts_words(ts)}', which Transfer Lab "
            "cannot decode. Export the images uncompressed (or as PNG) and upload them again."
        ) from None
    if not decoder.is_available:
        raise DataError(
            f"The DICOM file {where} is compressed as '{_ts_words(ts)}', and the decoder for that "
            f"compression is not installed on this server. Install it with: {INSTALL_EXTRA} "
            "(or export the images uncompressed) and upload again."
        )


def _grey(raw: np.ndarray, ds, photometric: str, n_frames: int, window: Optional[str],
          preset: Optional[tuple[float, float]]) -> DicomImage:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    header = _header_window(ds)
    if preset is not None:
        out, used, (center, width) = apply_window(values, *preset), window or "preset", preset
    elif header is not None:
        out, used, (center, width) = apply_window(values, *header, function=_voi_function(ds)), "header", header
    elif ds.get("VOILUTSequence"):
        lut = np.asarray(apply_voi_lut(values.astype(raw.dtype if raw.dtype.kind in "iu" else np.int64),
                                       ds, prefer_lut=True), dtype=np.float64)
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        out, used, center, width = scale_to_uint8(lut, 0, 2 ** bits - 1), "header", None, None
    else:
        padding = ds.get("PixelPaddingValue")
        keep = raw != padding if isinstance(padding, int) else None
        lo, hi = auto_range(values, keep)
        out, used, center, width = scale_to_uint8(values, lo, hi), "auto", (lo + hi) / 2, hi - lo
    if photometric == "MONOCHROME1":
        out = 255 - out
    return DicomImage(out, n_frames, used, _num(center), _num(width))


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM windowing (PS3.3 C.11.2.1.2) to 0..255, through pydicom's own apply_windowing."""
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_windowing

    voi = Dataset()   # only the windowing fields: the output range is then 0..255
    voi.PhotometricInterpretation, voi.BitsStored, voi.PixelRepresentation = "MONOCHROME2", 8, 0
    voi.WindowCenter, voi.WindowWidth = float(center), float(max(width, 1.0))
    voi.VOILUTFunction = function if function in ("LINEAR", "LINEAR_EXACT", "SIGMOID") else "LINEAR"
    out = apply_windowing(np.asarray(values, dtype=np.float64), voi)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def auto_range(values: np.ndarray, keep: Optional[np.ndarray] = None) -> tuple[float, float]:
    """The 0.5-99.5 percentile range of the finite values (min..max when that is flat)."""
    flat = np.asarray(values, dtype=np.float64)
    if keep is not None and keep.shape == flat.shape[:keep.ndim] and keep.any():
        flat = flat[keep]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(flat, AUTO_PERCENTILES))
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    return lo, hi


def scale_to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map lo..hi linearly to 0..255 (clipped); a flat image becomes black."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=lo, posinf=hi, neginf=lo)
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.clip(np.rint((values - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def _colour(raw: np.ndarray, ds, photometric: str) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    if photometric.startswith("PALETTE") and raw.ndim == 2:
        raw = np.asarray(apply_color_lut(raw, ds))
    if raw.ndim == 2:
        raw = np.repeat(raw[..., None], 3, axis=-1)
    raw = raw[..., :3]
    if raw.dtype == np.uint8:
        return np.ascontiguousarray(raw)
    if raw.dtype.kind == "f":
        return scale_to_uint8(raw, *auto_range(raw))
    bits = _int(ds, "BitsStored", raw.dtype.itemsize * 8)
    if photometric.startswith("PALETTE"):
        bits = raw.dtype.itemsize * 8
    return scale_to_uint8(raw, 0, 2 ** bits - 1)


def _header_window(ds) -> Optional[tuple[float, float]]:
    try:
        center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if center is None or width is None:
            return None
        center = float(center[0] if _multi(center) else center)
        width = float(width[0] if _multi(width) else width)
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        return None
    return center, width


def _voi_function(ds) -> str:
    return str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()


def _multi(value) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _int(ds, keyword: str, default: int = 0) -> int:
    try:
        value = ds.get(keyword, default)
        return int(value if value not in (None, "") else default)
    except (TypeError, ValueError):
        return default


def _num(value) -> Optional[float]:
    return None if value is None else round(float(value), 3)


def _uid_words(value) -> str:
    """pydicom's name for a well-known UID; the bare UID (digits and dots) otherwise."""
    from pydicom.uid import UID

    text = str(value).strip()
    name = UID(text).name if re.fullmatch(r"[0-9.]{1,64}", text) else ""
    return name if name and name != text else (text if re.fullmatch(r"[0-9.]{1,64}", text) else "")


def _ts_words(ts) -> str:
    return _uid_words(ts) or "an unknown transfer syntax"


def _undecodable(ts, where: str) -> DataError:
    from pydicom.pixels import get_decoder

    hint = ("Installing more decoders may help: " + INSTALL_EXTRA + ". Otherwise export "
            if get_decoder(ts).missing_dependencies else "Export ")
    return DataError(
        f"The DICOM file {where} is compressed as '{_ts_words(ts)}', and its pixel data could "
        f"not be decoded with the decoders installed on this server (it may also be damaged). "
        f"{hint}the images uncompressed (or as PNG) and upload them again."
    )


def _damaged(where: str, why: str) -> DataError:
    return DataError(
        f"The DICOM file {where} is damaged or could not be read ({why}). Remove it or "
        "replace it with a good copy, then upload again."
    )
