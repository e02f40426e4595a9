"""HTML pieces of the Results step (drawn as tables: readable by screen readers, no plot library)."""
from __future__ import annotations

import html

from tl_ui.ui.plot_text import confusion_sentence

RIGHT_RGB, WRONG_RGB = (22, 128, 60), (200, 40, 40)   # green diagonal, red mistakes
# Black or white text on each cell: on any background one of the two has at least 4.58:1.
BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def _blend(rgb: tuple[int, int, int], alpha: float) -> tuple[int, int, int]:
    """`rgb` at `alpha` over white, as an opaque colour (the same in light and dark mode)."""
    return tuple(round(alpha * c + (1 - alpha) * 255) for c in rgb)


def _luminance(rgb) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a, b) -> float:
    """WCAG's contrast ratio of two colours, 1 to 21."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_colour(background) -> str:
    """'#000000' or '#ffffff', whichever contrasts more with `background` (WCAG 1.4.3)."""
    return "#000000" if contrast_ratio(background, BLACK) >= contrast_ratio(background, WHITE) else "#ffffff"


def confusion_html(matrix: list[list[int]], classes: list[str]) -> str:
    """A confusion matrix heat map as an HTML table (rows: true class, columns: predicted), with a
    one-line summary above it; the table scrolls sideways on a narrow screen."""
    if not matrix or not classes:
        return ""
    biggest = max((max(row) for row in matrix if row), default=1) or 1
    head = "".join(f"<th scope='col'>{html.escape(c)}</th>" for c in classes)
    rows = []
    for i, (name, row) in enumerate(zip(classes, matrix)):
        cells = []
        total = sum(row) or 1
        for j, count in enumerate(row):
            level = count / biggest
            if i == j:
                bg = _blend(RIGHT_RGB, 0.12 + 0.78 * level)
            else:
                bg = _blend(WRONG_RGB, 0.08 + 0.82 * level) if count else (255, 255, 255)
            shown = f"<strong style='color:inherit'>{count}</strong>" if i == j else str(count)   # not colour alone
            cells.append(f"<td style='background:rgb{bg};color:{text_colour(bg)}' title='true {html.escape(name)}, "
                         f"predicted {html.escape(classes[j])}: {count} ({count / total:.0%} of this class)'>"
                         f"{shown}</td>")
        rows.append(f"<tr><th scope='row'>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return (
        f"<div class='tl-confusion'><p>{confusion_sentence(matrix, classes)}</p>"
        # a scroll box when many classes meet a narrow screen: focusable, so the keyboard can scroll it
        "<div class='tl-confusion-scroll' tabindex='0' role='region' aria-label='Confusion matrix'><table>"
        "<caption>Rows: true class · columns: predicted class · "
        "the diagonal (bold, green) = correct, off the diagonal (red) = mistakes</caption>"
        f"<thead><tr><th scope='col'>true ↓ / predicted →</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div></div>"
    )
