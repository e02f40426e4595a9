"""Plain-words formatting shared by every step: warning boxes, durations, percentages, intervals."""
from __future__ import annotations

import html
import math
import re
from typing import Optional, Sequence

from tl_ui.service.errors import GENERIC_ERROR, user_message  # noqa: F401 (re-exported for the steps)

_BOLD = re.compile(r"\*\*(.+?)\*\*")


def error_md(message: str, title: str = "Problem") -> str:
    """A plain-words problem as a visible warning box (HTML inside a gr.Markdown; see CSS .tl-warn)."""
    return warn_box(message, title)


def warn_box(message: str, title: str = "Problem", markdown_ok: bool = False) -> str:
    """`<div class="tl-warn">⚠️ <strong>title:</strong> message</div>`; '' for no message.

    The message is escaped unless `markdown_ok` (then simple **bold** is turned into <strong>)."""
    if not message:
        return ""
    body = html.escape(str(message))
    if markdown_ok:
        body = _BOLD.sub(r"<strong>\1</strong>", body)
    head = f"<strong>{html.escape(title)}:</strong> " if title else ""
    return f'<div class="tl-warn" role="alert">⚠️ {head}{body}</div>'


def fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_seconds(seconds: Optional[float]) -> str:
    """A measured duration: '0.4 s' below a second (never '0 s'), else like fmt_duration."""
    if seconds is not None and math.isfinite(seconds) and 0 <= seconds < 1:
        return "under 0.1 s" if seconds < 0.05 else f"{seconds:.1f} s"
    return fmt_duration(seconds)


def fmt_pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def fmt_share(share: float) -> str:
    """0.38% / 0.0034% / 100%: enough digits that a tiny trainable share is not shown as 0%."""
    if share <= 0:
        return "0%"
    if share >= 0.01:
        return f"{share:.1%}" if share < 1 else "100%"
    return f"{share * 100:.2g}%"


def fmt_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return f"{n:,}"


# -- estimates with their intervals ------------------------------------------------------------
def _is_ci(ci) -> bool:
    try:
        return ci is not None and len(ci) == 2 and all(math.isfinite(float(v)) for v in ci)
    except (TypeError, ValueError):
        return False


def pct_range(ci: Sequence[float]) -> str:
    """'56%–79%': whole percentages rounded outwards, so the range never looks tighter than it is
    (the same rounding as the plain sentences of tl_ui.trust)."""
    low, high = float(ci[0]) * 100, float(ci[1]) * 100
    return f"{math.floor(round(low, 6))}%–{math.ceil(round(high, 6))}%"


def pct_ci(value: Optional[float], ci=None, level: float = 0.95, short: bool = False) -> str:
    """'68% (95% interval 56%–79%)', or '68% (56%–79%)' when `short`; '68%' without an interval."""
    if value is None:
        return "–"
    text = f"{round(100 * float(value))}%"
    if _is_ci(ci):
        text += f" ({pct_range(ci)})" if short else f" ({level:.0%} interval {pct_range(ci)})"
    return text


def points(diff: float) -> str:
    """A difference of two accuracies in percentage points: '+32 points', '−3 points'."""
    value = round(100 * float(diff))
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    word = "point" if abs(value) == 1 else "points"
    return f"{sign}{abs(value)} {word}"


def points_range(ci: Sequence[float]) -> str:
    """'+17 to +48 points' (rounded outwards)."""
    low, high = math.floor(round(100 * float(ci[0]), 6)), math.ceil(round(100 * float(ci[1]), 6))

    def signed(v: int) -> str:
        return f"+{v}" if v > 0 else (f"−{abs(v)}" if v < 0 else "0")

    return f"{signed(low)} to {signed(high)} points"


def short_text(text: str, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def progress_html(fraction: float, text: str) -> str:
    """The training progress bar: a named `role=progressbar` whose value text is `text`."""
    pct = max(0.0, min(1.0, fraction)) * 100
    value_text = f' aria-valuetext="{html.escape(text)}"' if text else ""
    return (
        '<div class="tl-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{pct:.0f}" aria-label="Training progress"{value_text}>'
        f'<div class="tl-progress-bar" style="width:{pct:.1f}%"></div></div>'
        f'<div class="tl-progress-text">{html.escape(text)}</div>'
    )
