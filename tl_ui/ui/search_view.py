"""Strategy `auto` (issue 40) on the page: the live table of tries on the Train step (from the run's 'trial'
events) and, on Results, the same table with the winner and the margin sentence (from metrics.json's `search`).
Every score here is on the validation examples; the Results' headline numbers are the winner's, on the test
examples."""
from __future__ import annotations

import html
from typing import Iterable, Optional

from tl_ui.ui.formatting import fmt_pct

STATE_WORDS = {"running": "running…", "complete": "finished", "pruned": "pruned (stopped early: behind the others)",
               "stopped": "stopped (over the time budget)", "skipped": "skipped (would not fit in the time left)",
               "failed": "failed"}

UNDER_WAY = "running"                                              # a try's state while it trains
ENDED = ("complete", "pruned", "stopped", "skipped", "failed")   # a try's states after that
CUT_SHORT = ENDED[1:3]   # pruned, stopped: their score is the last epoch's


def trial_rows(events: Iterable[dict]) -> list[dict]:
    """The last 'trial' event of each try, in order."""
    rows: dict[int, dict] = {}
    for e in events:
        if e.get("kind") == "trial":
            rows[int(e.get("number", 0))] = e
    return [rows[k] for k in sorted(rows)]


def _score(row: dict) -> str:
    score, ci = row.get("val_score"), row.get("val_score_ci")
    if score is None:
        return "—"
    if ci and len(ci) == 2:
        return f"{fmt_pct(score)} ({fmt_pct(ci[0])}–{fmt_pct(ci[1])})"
    return f"{fmt_pct(score)} (last epoch)" if row.get("state") in CUT_SHORT else fmt_pct(score)


def _name(row: dict) -> str:
    return str(row.get("name") or row.get("strategy") or "")


def trials_html(rows: list[dict], caption: str, winner: Optional[dict] = None) -> str:
    """An accessible table of the tries ('' with none)."""
    if not rows:
        return ""
    body = []
    for i, row in enumerate(rows, 1):
        won = winner is not None and (row.get("strategy"), row.get("settings") or {}) == (
            winner.get("strategy"), winner.get("settings") or {}) and row.get("state") == "complete"
        name = html.escape(_name(row)) + (" <strong>(kept)</strong>" if won else "")
        note = html.escape(str(row.get("note") or ""))
        state = html.escape(STATE_WORDS.get(str(row.get("state")), str(row.get("state"))))
        seconds = row.get("seconds") or 0
        body.append(f"<tr><td>{i}</td><th scope=\"row\" style=\"text-align: left\">{name}</th><td>{html.escape(_score(row))}</td>"
                    f"<td>{'—' if not seconds else f'{seconds:.0f} s'}</td>"
                    f"<td style=\"text-align: left\">{state}{f'<br><small>{note}</small>' if note else ''}</td></tr>")
    return ("<div class=\"tl-alt tl-trials\"><table>"
            f"<caption>{html.escape(caption)}</caption>"
            "<thead><tr><th scope=\"col\">#</th><th scope=\"col\">Strategy and settings</th>"
            "<th scope=\"col\">Validation accuracy (95% interval)</th><th scope=\"col\">Seconds</th>"
            "<th scope=\"col\">Outcome</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def trial_curves_svg(rows: list[dict]) -> str:
    """Each fine-tuning try's validation accuracy after each epoch, as faint lines in one small chart; the try
    under way drawn strong ('' before any try has finished an epoch). An inline SVG, not a gr.LinePlot: a
    Gradio plot fixes its series from its first data (tries appear one by one) and has no per-line opacity.
    The table under it says the same in words (its text alternative)."""
    curves = [(i, r) for i, r in enumerate(rows, 1) if r.get("curve")]
    if not curves:
        return ""
    width, height, left, bottom, top, right = 420, 170, 34, 22, 8, 10
    epochs = max(len(r["curve"]) for _i, r in curves)

    def point(epoch: int, value: float) -> str:
        x = left + (width - left - right) * ((epoch - 1) / max(epochs - 1, 1) if epochs > 1 else 0.5)
        y = top + (height - top - bottom) * (1 - min(max(float(value), 0.0), 1.0))
        return f"{x:.1f},{y:.1f}"

    marks = []
    for tick in (0.0, 0.5, 1.0):
        y = point(1, tick).split(",")[1]
        marks.append(f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" stroke="#d1d5db" stroke-width="1"/>'
                     f'<text x="{left - 4}" y="{float(y) + 4:.1f}" text-anchor="end" font-size="10" fill="#374151">'
                     f'{tick:.0%}</text>')
    marks.append(f'<text x="{(width + left) / 2:.0f}" y="{height - 4}" text-anchor="middle" font-size="10" '
                 f'fill="#374151">epoch of the try (1 to {epochs})</text>')
    for number, row in curves:
        current = row.get("state") == UNDER_WAY
        colour, opacity, stroke = ("#c2410c", 1.0, 2.5) if current else ("#4b5563", 0.35, 1.5)
        points = " ".join(point(e, v) for e, v in enumerate(row["curve"], 1))
        title = html.escape(f"try {number}: {_name(row)}")
        marks.append(f'<g class="tl-try-curve" opacity="{opacity}"><title>{title}</title>'
                     f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="{stroke}"/>'
                     + "".join(f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5" fill="{colour}"/>'
                               for p in points.split()) + "</g>")
    label = (f"Validation accuracy after each epoch of {len(curves)} fine-tuning "
             f"{'try' if len(curves) == 1 else 'tries'}, one faint line each; the table below lists them in words.")
    return (f'<figure class="tl-try-curves" style="margin: 0 0 6px 0; max-width: {width}px">'
            f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{html.escape(label)}">'
            f'{"".join(marks)}</svg><figcaption class="tl-note">Each try\'s validation accuracy by epoch (faint: '
            f'ended tries; strong: the one under way).</figcaption></figure>')


def live_trials_html(events: list[dict]) -> str:
    """The Train step's curves and table while an auto run searches ('' for other runs)."""
    rows = trial_rows(events)
    if not rows:
        return ""
    return trial_curves_svg(rows) + trials_html(rows, "Tries so far (scored on the validation examples only; the "
                                                      "test examples wait for the winner)")


def search_status(events: list[dict]) -> Optional[str]:
    """The Train step's status line while the search goes on (None once the winner's refit has started)."""
    rows = trial_rows(events)
    if not rows or any(e.get("kind") == "started" for e in events):
        return None
    last = rows[-1]
    doing = (f"{len(rows)} tries so far" if last.get("state") in ENDED
             else f"try {last.get('number')}: {_name(last)}")
    left = next((r.get("budget_left_s") for r in reversed(rows) if r.get("budget_left_s") is not None), None)
    budget = f" · {left:.0f} s of the time budget were left when it started" if left is not None else ""
    return f"**Searching:** {html.escape(doing)}{budget}."


def search_results_html(search: Optional[dict]) -> str:
    """Results: what the search tried, which it kept and why ('' for runs without a search)."""
    if not search:
        return ""
    winner = search.get("winner") or {}
    kept = next((t for t in search.get("trials") or [] if t.get("state") == "complete"
                 and (t.get("strategy"), t.get("settings") or {}) == (winner.get("strategy"), winner.get("settings") or {})),
                None)
    name = _name(kept) if kept else str(winner.get("strategy"))
    minutes = float(search.get("budget_s") or 0) / 60
    budget = f"{minutes:g} minute{'' if minutes == 1 else 's'}"
    margin = search.get("margin")
    ci = search.get("margin_ci")
    margin_text = ("" if margin is None or not ci else
                   f" Margin over the runner-up on the validation examples: {100 * margin:+.1f} points "
                   f"(95% interval {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}).")
    head = (f"<p><strong>Chosen by the search: {html.escape(name)}.</strong> "
            f"{html.escape(str(search.get('sentence') or ''))}{html.escape(margin_text)} "
            f"It was trained again as this run's model; every number above and below is that model's, measured "
            f"once on the test examples, which took no part in the choice. Budget {budget}, "
            f"{html.escape(str(search.get('sampler')))} with seed {html.escape(str(search.get('seed')))}.</p>")
    table = trials_html(search.get("trials") or [], f"What the search tried (validation accuracy on "
                                                    f"{search.get('n_chosen') or 'the'} validation examples)",
                        winner=winner)
    return f"<div id=\"search-block\">{head}{table}</div>"
