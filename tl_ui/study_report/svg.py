"""A small SVG chart writer for the report's figures: axes, lines, bands, points and intervals.

Hand-written SVG rather than a plotting library: a few kilobytes per figure, text kept as text
(selectable, and read by WeasyPrint as text), the same drawing on screen, in print and in the PDF,
and `role="img"` with a `<title>` and `<desc>` for screen readers. Colours are Okabe and Ito's
colour-blind-safe palette; every series also differs by dash or marker shape, never by colour alone.
"""
from __future__ import annotations

import html
import itertools
from typing import Callable, Optional, Sequence

BLUE, VERMILLION, GREEN, GREY, BLACK = "#0072B2", "#D55E00", "#009E73", "#6b6b6b", "#1a1a1a"
BAND_BLUE, BAND_VERMILLION = "#0072B2", "#D55E00"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
_ids = itertools.count(1)


def _f(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def percent_tick(value: float) -> str:
    return f"{value * 100:.0f}%"


def decimal_tick(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) > 1e-12 else "0"


class Chart:
    """A plot area with linear x and y scales, drawn into an SVG of `width` x `height` pixels."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], *, width: int = 480,
                 height: int = 330, left: int = 60, right: int = 16, top: int = 14, bottom: int = 50):
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.parts: list[str] = []
        self.legend_items: list[tuple[str, str, Optional[str], str]] = []

    # -- scales --------------------------------------------------------------------------------
    @staticmethod
    def _clamp(v: float, a: float, b: float) -> float:
        return min(max(v, min(a, b)), max(a, b))

    def sx(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (self._clamp(x, self.x0, self.x1) - self.x0) / span * (self.width - self.left - self.right)

    def sy(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (self._clamp(y, self.y0, self.y1) - self.y0) / span * (
            self.height - self.top - self.bottom)

    # -- axes ------------------------------------------------------------------------------------
    def axes(self, x_label: str, y_label: str, x_ticks: Sequence[float], y_ticks: Sequence[float],
             x_fmt: Callable[[float], str] = percent_tick, y_fmt: Callable[[float], str] = percent_tick) -> None:
        left, right = self.left, self.width - self.right
        top, bottom = self.top, self.height - self.bottom
        grid = []
        for t in y_ticks:
            y = self.sy(t)
            grid.append(f'<line x1="{_f(left)}" y1="{_f(y)}" x2="{_f(right)}" y2="{_f(y)}" stroke="#dddddd" '
                        f'stroke-width="1"/>')
            grid.append(self._text(left - 6, y + 4, y_fmt(t), anchor="end"))
        for t in x_ticks:
            x = self.sx(t)
            grid.append(f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" stroke="#eeeeee" '
                        f'stroke-width="1"/>')
            grid.append(self._text(x, bottom + 16, x_fmt(t), anchor="middle"))
        grid.append(f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(right - left)}" height="{_f(bottom - top)}" '
                    f'fill="none" stroke="{GREY}" stroke-width="1"/>')
        grid.append(self._text((left + right) / 2, self.height - 12, x_label, anchor="middle", size=12))
        cx, cy = 16, (top + bottom) / 2
        if y_label:
            grid.append(f'<text x="{_f(cx)}" y="{_f(cy)}" transform="rotate(-90 {_f(cx)} {_f(cy)})" '
                        f'text-anchor="middle" font-family="{FONT}" font-size="12" fill="{BLACK}">'
                        f'{html.escape(y_label)}</text>')
        self.parts[:0] = grid

    def category_axis(self, names: Sequence[str], x_label: str, x_ticks: Sequence[float],
                      x_fmt: Callable[[float], str] = percent_tick) -> None:
        """A dot-and-interval chart: one row per name (top to bottom), the scale along x."""
        self.y0, self.y1 = len(names), 0   # row i at y = i + 0.5, the first at the top
        self.axes(x_label, "", x_ticks, [], x_fmt)
        for i, name in enumerate(names):
            label = name if len(name) <= 22 else name[:21] + "…"
            self.parts.append(self._text(self.left - 6, self.sy(i + 0.5) + 4, label, anchor="end"))

    def _text(self, x: float, y: float, text: str, anchor: str = "start", size: int = 11,
              colour: str = BLACK) -> str:
        return (f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" font-family="{FONT}" font-size="{size}" '
                f'fill="{colour}">{html.escape(text)}</text>')

    # -- marks -------------------------------------------------------------------------------------
    def line(self, xs: Sequence[float], ys: Sequence[float], colour: str, label: Optional[str] = None,
             dash: Optional[str] = None, width: float = 2.0, step: bool = False) -> None:
        points = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            if step and i:
                points.append(f"{_f(self.sx(x))},{_f(self.sy(ys[i - 1]))}")
            points.append(f"{_f(self.sx(x))},{_f(self.sy(y))}")
        if len(points) < 2:
            return
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                          f'stroke-width="{width}"{dashing} stroke-linejoin="round"/>')
        if label:
            self.legend_items.append(("line", colour, dash, label))

    def band(self, xs: Sequence[float], lows: Sequence[float], highs: Sequence[float], colour: str,
             label: Optional[str] = None) -> None:
        if len(xs) < 2:
            return
        upper = [f"{_f(self.sx(x))},{_f(self.sy(h))}" for x, h in zip(xs, highs)]
        lower = [f"{_f(self.sx(x))},{_f(self.sy(lo))}" for x, lo in zip(reversed(xs), reversed(lows))]
        self.parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{colour}" fill-opacity="0.16" '
                          f'stroke="none"/>')
        if label:
            self.legend_items.append(("band", colour, None, label))

    def points(self, xs: Sequence[float], ys: Sequence[float], colour: str, label: Optional[str] = None,
               shape: str = "circle", size: float = 4.0) -> None:
        for x, y in zip(xs, ys):
            self.parts.append(self._marker(self.sx(x), self.sy(y), colour, shape, size))
        if label:
            self.legend_items.append((shape, colour, None, label))

    def interval(self, y: float, low: float, high: float, value: Optional[float], colour: str,
                 shape: str = "circle", offset: float = 0.0) -> None:
        """A horizontal interval with its value marked, on row `y` of a category chart."""
        cy = self.sy(y) + offset
        x1, x2 = self.sx(low), self.sx(high)
        self.parts.append(f'<line x1="{_f(x1)}" y1="{_f(cy)}" x2="{_f(x2)}" y2="{_f(cy)}" stroke="{colour}" '
                          f'stroke-width="2"/>')
        for x in (x1, x2):
            self.parts.append(f'<line x1="{_f(x)}" y1="{_f(cy - 4)}" x2="{_f(x)}" y2="{_f(cy + 4)}" '
                              f'stroke="{colour}" stroke-width="2"/>')
        if value is not None:
            self.parts.append(self._marker(self.sx(value), cy, colour, shape, 4.5))

    def vline(self, x: float, colour: str = GREY, dash: str = "4 3", label: Optional[str] = None) -> None:
        self.parts.append(f'<line x1="{_f(self.sx(x))}" y1="{_f(self.top)}" x2="{_f(self.sx(x))}" '
                          f'y2="{_f(self.height - self.bottom)}" stroke="{colour}" stroke-width="1.5" '
                          f'stroke-dasharray="{dash}"/>')
        if label:
            self.legend_items.append(("line", colour, dash, label))

    def _marker(self, x: float, y: float, colour: str, shape: str, size: float) -> str:
        if shape == "square":
            return (f'<rect x="{_f(x - size)}" y="{_f(y - size)}" width="{_f(2 * size)}" height="{_f(2 * size)}" '
                    f'fill="{colour}" stroke="white" stroke-width="1"/>')
        if shape == "diamond":
            s = size * 1.3
            return (f'<polygon points="{_f(x)},{_f(y - s)} {_f(x + s)},{_f(y)} {_f(x)},{_f(y + s)} {_f(x - s)},{_f(y)}" '
                    f'fill="{colour}" stroke="white" stroke-width="1"/>')
        if shape == "ring":
            return (f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(size)}" fill="white" stroke="{colour}" '
                    f'stroke-width="2"/>')
        return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(size)}" fill="{colour}" stroke="white" stroke-width="1"/>'

    # -- output --------------------------------------------------------------------------------------
    def svg(self, title: str, description: str) -> str:
        """The figure as an inline <svg> with role="img", its title and description (the text alternative)."""
        n = next(_ids)
        title_id, desc_id = f"svg-title-{n}", f"svg-desc-{n}"
        legend = self._legend()
        height = self.height + (len(self.legend_items) * 16 + 8 if self.legend_items else 0)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{title_id} {desc_id}" '
                f'viewBox="0 0 {self.width} {height}" width="{self.width}" height="{height}" class="chart">'
                f'<title id="{title_id}">{html.escape(title)}</title><desc id="{desc_id}">{html.escape(description)}</desc>'
                + "".join(self.parts) + legend + "</svg>")

    def _legend(self) -> str:
        out, y = [], self.height + 4
        for kind, colour, dash, label in self.legend_items:
            x = self.left
            if kind == "line":
                dashing = f' stroke-dasharray="{dash}"' if dash else ""
                out.append(f'<line x1="{x}" y1="{y + 6}" x2="{x + 24}" y2="{y + 6}" stroke="{colour}" '
                           f'stroke-width="2"{dashing}/>')
            elif kind == "band":
                out.append(f'<rect x="{x}" y="{y}" width="24" height="12" fill="{colour}" fill-opacity="0.16"/>')
            else:
                out.append(self._marker(x + 12, y + 6, colour, kind, 4.5))
            out.append(self._text(x + 32, y + 10, label))
            y += 16
        return "".join(out)
