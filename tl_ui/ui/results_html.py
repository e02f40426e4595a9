"""HTML pieces of the Results step (drawn as tables: readable by screen readers, no plot library)."""
from __future__ import annotations

import html


def confusion_html(matrix: list[list[int]], classes: list[str]) -> str:
    """A confusion matrix heat map as an HTML table (rows: true class, columns: predicted)."""
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
                bg = f"rgba(22, 128, 60, {0.12 + 0.78 * level:.2f})"
            else:
                bg = f"rgba(200, 40, 40, {0.08 + 0.82 * level:.2f})" if count else "transparent"
            color = "#fff" if level > 0.55 else "inherit"
            shown = f"<strong>{count}</strong>" if i == j else str(count)   # not colour alone
            cells.append(f"<td style='background:{bg};color:{color}' title='true {html.escape(name)}, "
                         f"predicted {html.escape(classes[j])}: {count} ({count / total:.0%} of this class)'>"
                         f"{shown}</td>")
        rows.append(f"<tr><th scope='row'>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return (
        "<div class='tl-confusion'><table><caption>Rows: true class · columns: predicted class · "
        "the diagonal (bold, green) = correct, off the diagonal (red) = mistakes</caption>"
        f"<thead><tr><th>true ↓ / predicted →</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
