"""Small helpers so every user-facing message reads the same way."""
from __future__ import annotations

from typing import Iterable


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def quoted_list(names: Iterable[object], limit: int = 5) -> str:
    """"'a', 'b', 'c'" or "'a', 'b' and 3 more" (short names for a message)."""
    names = [str(n) for n in names]
    shown = ", ".join(f"'{short(n)}'" for n in names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown


def row_list(rows: Iterable[int], limit: int = 10) -> str:
    """"4, 7 and 9" or "4, 7, 9, ... and 12 more": spreadsheet row numbers."""
    rows = [int(r) for r in rows]
    if len(rows) == 1:
        return str(rows[0])
    if len(rows) <= limit:
        return ", ".join(map(str, rows[:-1])) + f" and {rows[-1]}"
    return ", ".join(map(str, rows[:limit])) + f" and {len(rows) - limit} more"


def short(text: str, width: int = 60) -> str:
    """One line, at most `width` characters: safe to show a member name or cell in a message."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."
