"""Accessibility checks for the browser tests: axe-core's WCAG 2.0/2.1 A and AA rules, keyboard-only
navigation (Tab until a target has the focus, with a visible focus ring) and words broken mid-word.

axe-core comes inside the `axe-playwright-python` wheel (the `test` extra): its `axe.min.js` is
injected into the page; nothing is fetched while the tests run. Every axe run writes what it found
to test-artifacts/browser/axe/<where>.json (an empty list when the page passes).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers import browser_helpers as bh

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_REPORTS = bh.ARTIFACTS / "axe"


def axe_script() -> str:
    from axe_playwright_python.base import AXE_FILE_PATH

    return Path(AXE_FILE_PATH).read_text(encoding="utf-8")


def axe_violations(page, where: str) -> list[dict]:
    """axe-core's violations of the WCAG 2 A/AA rules on what the page shows now (hidden tabs and
    closed accordions are not checked: visit them). Saved to test-artifacts/browser/axe/<where>.json."""
    wait_settled(page)
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_script())
    result = page.evaluate(
        """(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
            .then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 300),
                                          why: n.failureSummary}))})))""",
        WCAG_TAGS,
    )
    AXE_REPORTS.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", where.lower()).strip("-")
    (AXE_REPORTS / f"{slug}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def wait_settled(page, timeout_s: float = 15) -> None:
    """Wait until no component shows Gradio's 'processing' state (its content greyed out while an
    event runs): axe checks what a user reads once the page has answered."""
    bh.wait_until(lambda: not page.evaluate(
        "() => Array.from(document.querySelectorAll('.pending')).some(e => e.offsetParent !== null)"),
        timeout_s, "the page to finish processing", page=page)
    page.wait_for_timeout(100)   # Gradio fades the content back in (at once in the tests' pages: bh.NO_MOTION_JS)


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} element(s)")
        for node in v["nodes"][:4]:
            lines.append(f"    {node['target']}: {node['html'][:160]}")
            lines.append(f"      {(node.get('why') or '').replace(chr(10), ' ')[:240]}")
    return "\n".join(lines)


def assert_accessible(page, where: str) -> None:
    """Zero axe-core violations of the WCAG 2 A/AA rules in what the page shows now."""
    violations = axe_violations(page, where)
    assert not violations, f"axe-core finds WCAG 2.1 A/AA violations ({where}):\n{describe_violations(violations)}"


STEPS = ("model", "data", "strategy", "train", "results")


def visit_step(page, step: str) -> None:
    """Open a wizard step by clicking its tab (the mouse walk-through)."""
    page.locator(f"#tab-{step}-button").click()
    page.wait_for_timeout(250)


def assert_steps_accessible(page, state: str, steps=STEPS) -> None:
    """Zero axe violations on each of `steps` in the page's present state (then back to the first)."""
    for step in steps:
        visit_step(page, step)
        assert_accessible(page, f"{state}-{step}")


# --------------------------------------------------------------------------- keyboard

_FOCUS_JS = """(selector) => {
    const el = document.activeElement;
    if (!el || el === document.body) return {matches: false, what: 'body'};
    const target = document.querySelector(selector);
    const matches = !!target && (el === target || target.contains(el));
    const cs = getComputedStyle(el);
    const ring = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2)
                 || (cs.boxShadow && cs.boxShadow !== 'none');
    const what = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (el.closest('[id]') ? ' in #' + el.closest('[id]').id : '')
        + ' "' + ((el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 40)) + '"';
    return {matches, ring, what};
}"""


def focused(page, selector: str) -> dict:
    return page.evaluate(_FOCUS_JS, selector)


def tab_to(page, selector: str, max_presses: int = 120, backwards: bool = False) -> int:
    """Press Tab (Shift+Tab when `backwards`) until the focus is on `selector` (or inside it), as a
    keyboard user would; the focused element must show a focus ring. Returns the presses needed."""
    key = "Shift+Tab" if backwards else "Tab"
    trail = []
    for presses in range(1, max_presses + 1):
        page.keyboard.press(key)
        state = focused(page, selector)
        trail.append(state["what"])
        if state["matches"]:
            assert state["ring"], f"{selector} has the focus but no visible focus ring ({state['what']})"
            return presses
    raise AssertionError(f"{selector} was not reached with {max_presses} × {key}; the focus went through: "
                         + " → ".join(trail[-40:]))


def open_step(page, step: str) -> None:
    """Open a wizard step with the keyboard: Shift+Tab back up to the step's tab (each tab of the
    row of steps is a button in the tab order), then Enter."""
    tab_to(page, f"#tab-{step}-button", max_presses=250, backwards=True)
    page.keyboard.press("Enter")
    page.wait_for_timeout(250)


# --------------------------------------------------------------------------- narrow screens

_BROKEN_WORDS_JS = r"""(selector) => {
    // words whose letters lie on two lines: the browser broke them mid-word
    const root = document.querySelector(selector);
    if (!root) return ['no ' + selector];
    const broken = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (!node.parentElement || !node.parentElement.offsetParent) continue;
        const re = /[^\s\-‐–—\/·,]+/g; let m;   // a break after a hyphen or slash is a fair one
        while ((m = re.exec(node.textContent)) !== null) {
            if (m[0].length < 2) continue;
            const range = document.createRange();
            range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
            const tops = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0)
                                 .map(r => Math.round(r.top)));
            if (tops.size > 1) broken.push(m[0]);
        }
    }
    return broken;
}"""


def words_broken_mid_word(page, selector: str) -> list[str]:
    """The words inside `selector` that are split over two lines (e.g. 'imag|es' in a squeezed table)."""
    return page.evaluate(_BROKEN_WORDS_JS, selector)
