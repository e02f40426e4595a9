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

ENDED = ("complete", "pruned", "stopped", "skipped", "failed")   # a try's states after "running"
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


def live_trials_html(events: list[dict]) -> str:
    """The Train step's table while an auto run searches ('' for other runs)."""
    rows = trial_rows(events)
    if not rows:
        return ""
    return trials_html(rows, "Tries so far (scored on the validation examples only; the test examples wait "
                             "for the winner)")


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
