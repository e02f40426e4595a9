"""Every number the report prints, with the file and place it was read from.

A `Quote` is one value of a run folder's file (metrics.json, run.json, status.json, the export's
model/transfer_lab.json, or the data file's summary) at a JSON pointer (RFC 6901), with the style
it is printed in. The templates print quotes only through the `q` macro, which marks each one with
its source and pointer (`data-src`, `data-ptr`, `data-style`): tests/unit/test_study_report.py reads
every marked number back from its file, formats it again and compares, and finds no other digit
in the report's text. A `Said` is a sentence the engine wrote (e.g. `accuracy_sentence`), quoted
word for word the same way.

The report computes nothing: no sum, share or difference of its own, only what the files hold.
Interval ends are rounded outwards (lower end down, upper end up), so a printed interval is never
narrower than the stored one.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Optional

# Where a quoted value may come from (each is a file of the run folder, or the data file it names).
SOURCES = ("metrics.json", "run.json", "status.json", "model/transfer_lab.json", "data")

STYLES = ("level", "percent", "percent_low", "percent_high", "points", "points_low", "points_high", "signed_points",
          "signed_points_low", "signed_points_high", "decimal", "decimal_low", "decimal_high", "signed_decimal",
          "signed_decimal_low", "signed_decimal_high", "count", "seconds", "date", "setting")


def pointer(*parts: Any) -> str:
    """A JSON pointer (RFC 6901) from keys and list indices: pointer("per_class", "a/b", 0) -> '/per_class/a~1b/0'."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(document: Any, ptr: str) -> Any:
    """The value at JSON pointer `ptr` in `document` (KeyError / IndexError when absent)."""
    value = document
    if not ptr:
        return value
    for raw in ptr.split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def _decimal(value: float, places: int, rounding, scale: int = 1) -> Decimal:
    # repr() first: 0.29 must round as the decimal the file holds (29.0%), not as 0.29 * 100 in binary
    # (28.999999999999996, which a lower end would floor to 28.9%)
    exact = Decimal(repr(float(value))) * scale
    return exact.quantize(Decimal(1).scaleb(-places), rounding=rounding)


_ROUNDING = {"": ROUND_HALF_UP, "_low": ROUND_FLOOR, "_high": ROUND_CEILING}


def _split(style: str) -> tuple[str, str]:
    for end in ("_low", "_high"):
        if style.endswith(end):
            return style[: -len(end)], end
    return style, ""


def format_value(value: Any, style: str) -> str:
    """The printed text of `value` in `style` (the one formatter of the report and of its test).

    level: 0.95 -> '95%'; percent: 0.75 -> '75.0%'; points (percentage points, for calibration errors): 0.1159 -> '11.6';
    signed_points: 0.0667 -> '+6.7'; decimal: 0.9342 -> '0.934'; count: 3383818 -> '3,383,818';
    seconds: 0.39 -> '0.4 s'; date: a Unix time -> '2026-12-07 14:01 UTC'; setting: a run.json value
    as written (0.003, 8, true, or the text). `_low` / `_high` round an interval's end outwards."""
    if value is None:
        return "not recorded"
    if style == "level":     # a level asked for (95%, 90%): as a whole per cent when it is one
        number = (Decimal(repr(float(value))) * 100).normalize()
        return f"{number:f}%"
    base, end = _split(style)
    rounding = _ROUNDING[end]
    if base in ("percent", "points", "signed_points"):
        number = _decimal(value, 1, rounding, scale=100)
        if number == 0:
            number = abs(number)   # no '-0.0'
        sign = "+" if base == "signed_points" and number > 0 else ""
        return f"{sign}{number}%" if base == "percent" else f"{sign}{number}"
    if base in ("decimal", "signed_decimal"):
        number = _decimal(float(value), 3, rounding)
        if number == 0:
            number = abs(number)
        sign = "+" if base == "signed_decimal" and number > 0 else ""
        return f"{sign}{number}"
    if base == "count":
        return f"{int(value):,}"
    if base == "seconds":
        seconds = float(value)
        if seconds < 60:
            return f"{_decimal(seconds, 1, ROUND_HALF_UP)} s"
        minutes, rest = divmod(int(round(seconds)), 60)
        return f"{minutes} min {rest:02d} s"
    if base == "date":
        moment = _dt.datetime.fromtimestamp(float(value), tz=_dt.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    if base == "setting":
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return repr(value)
        return str(value)
    raise ValueError(f"unknown number style {style!r}")


@dataclass(frozen=True)
class Quote:
    """One value read from a run's file: printed as `text`, traceable by (run, source, ptr)."""
    value: Any
    source: str
    ptr: str
    style: str
    run: str = ""

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}")
        if _split(self.style)[0] not in {_split(s)[0] for s in STYLES}:
            raise ValueError(f"unknown number style {self.style!r}")

    @property
    def present(self) -> bool:
        return self.value is not None

    @property
    def text(self) -> str:
        return format_value(self.value, self.style)


@dataclass(frozen=True)
class Said:
    """A sentence a run's file holds (the engine's own wording), quoted as it stands."""
    text: str
    source: str
    ptr: str
    run: str = ""


class Quoter:
    """Makes quotes of one run's files: `metrics.q("/accuracy", "percent")`. A missing value gives
    a Quote whose value is None (printed 'not recorded'); `get` reads without quoting."""

    def __init__(self, document: Any, source: str, run: str):
        self.document = document if document is not None else {}
        self.source = source
        self.run = run

    def get(self, ptr: str, default: Any = None) -> Any:
        try:
            return resolve(self.document, ptr)
        except (KeyError, IndexError, TypeError, ValueError):
            return default

    def has(self, ptr: str) -> bool:
        return self.get(ptr) is not None

    def q(self, ptr: str, style: str) -> Quote:
        value = self.get(ptr)
        if isinstance(value, (list, dict)):
            raise TypeError(f"{self.source}{ptr} is not a single value")
        return Quote(value, self.source, ptr, style, self.run)

    def interval(self, ptr: str, style: str = "percent") -> Optional[tuple[Quote, Quote]]:
        """(low, high) of the `[low, high]` list at `ptr`, rounded outwards; None when absent."""
        value = self.get(ptr)
        if not isinstance(value, list) or len(value) != 2 or value[0] is None or value[1] is None:
            return None
        return (Quote(value[0], self.source, f"{ptr}/0", f"{style}_low", self.run),
                Quote(value[1], self.source, f"{ptr}/1", f"{style}_high", self.run))

    def said(self, ptr: str) -> Optional[Said]:
        value = self.get(ptr)
        return Said(str(value), self.source, ptr, self.run) if isinstance(value, str) and value.strip() else None
