"""Helpers for the browser tests (tests/browser/).

* launching Debian's Chromium through the `playwright` package (never `playwright install`),
* numbered screenshots under ``test-artifacts/browser/`` at the repository root,
* small DOM helpers for Gradio 6 components (poll-and-wait with readable failure messages),
* builders of bad uploads (empty zip, zip-slip, one class, ...) written into a tmp folder.
"""
from __future__ import annotations

import io
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterable

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("TL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1366, "height": 900}


# --------------------------------------------------------------------------- browser


def launch_chromium(playwright):
    """Debian's Chromium with the flags from DESIGN.md; a fresh profile per launch."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )


# Every CSS transition and animation ends at once: what a test reads, checks with axe or photographs is the page's
# settled state, never a button halfway through fading in (axe once measured the Start button's contrast while
# it faded from disabled to enabled).
NO_MOTION_JS = """document.addEventListener('DOMContentLoaded', () => {
    const style = document.createElement('style');
    style.textContent = '*, *::before, *::after { transition-duration: 0s !important; transition-delay: 0s !important; ' +
                        'animation-duration: 0s !important; animation-delay: 0s !important; }';
    document.head.appendChild(style);
});"""


def new_context(browser, viewport: dict = VIEWPORT):
    """A fresh context (own profile, cookies, downloads) whose pages have no motion (NO_MOTION_JS)."""
    context = browser.new_context(viewport=viewport, accept_downloads=True, reduced_motion="reduce")
    context.add_init_script(NO_MOTION_JS)
    context.set_default_timeout(30_000)
    return context


def new_page(browser):
    """A page in a fresh context (new_context)."""
    return new_context(browser).new_page()


def screenshot(page, number: int, step: str) -> Path:
    """Save a full-page screenshot as test-artifacts/browser/NN-step.png and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
    path = ARTIFACTS / f"{number:02d}-{slug}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --------------------------------------------------------------------------- DOM helpers


_TEXT_JS = """(el) => {
    // The visible text of a component without Gradio's loading overlay ("processing | 0.5s"),
    // which sits inside every component while one of its events is pending.
    const txt = (node) => {
        if (node.nodeType === 3) return node.textContent;
        if (node.nodeType !== 1) return '';
        if (node.matches('[data-testid=status-tracker]')) return '';
        if (!node.querySelector('[data-testid=status-tracker]'))
            return (node.innerText !== undefined ? node.innerText : node.textContent) || '';
        return Array.from(node.childNodes).map(txt).join(' ');
    };
    return txt(el).trim();
}"""


def text_of(page, selector: str) -> str:
    """Text a user reads in `selector` ('' when absent), without the loading overlay's text."""
    loc = page.locator(selector)
    if loc.count() == 0:
        return ""
    try:
        return loc.first.evaluate(_TEXT_JS, timeout=2_000)
    except Exception:  # element re-rendered between count() and evaluate()
        return ""


def wait_until(
    check: Callable[[], object],
    timeout_s: float,
    what: str,
    page=None,
    describe: Callable[[], str] | None = None,
    interval_s: float = 0.25,
):
    """Poll `check` until it returns something truthy; fail with `what` and the current state."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            state = describe() if describe else ""
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}. {state}")
        if page is not None:
            page.wait_for_timeout(int(interval_s * 1000))
        else:
            time.sleep(interval_s)


def wait_for_text(page, selector: str, words: Iterable[str] | str, timeout_s: float = 30,
                  all_words: bool = False) -> str:
    """Wait until the text of `selector` contains any (or all) of `words`, case-insensitively."""
    words = [words] if isinstance(words, str) else list(words)

    def check():
        text = text_of(page, selector)
        low = text.lower()
        hits = [w.lower() in low for w in words]
        return text if (all(hits) if all_words else any(hits)) else None

    return wait_until(
        check, timeout_s, f"{selector} to contain {'all' if all_words else 'any'} of {words!r}",
        page=page, describe=lambda: f"{selector} shows: {text_of(page, selector)!r}",
    )


def wait_for_regex(page, selector: str, pattern: str, timeout_s: float = 30) -> re.Match:
    rx = re.compile(pattern, re.I)
    return wait_until(
        lambda: rx.search(text_of(page, selector)), timeout_s,
        f"{selector} to match /{pattern}/", page=page,
        describe=lambda: f"{selector} shows: {text_of(page, selector)!r}",
    )


def open_accordions(page) -> None:
    """Open every visible closed accordion (Gradio 6 does not render a closed accordion's children)."""
    for _ in range(5):
        closed = page.locator("button.label-wrap:not(.open):visible")
        if closed.count() == 0:
            return
        closed.first.click()
        page.wait_for_timeout(200)


def render_all_tabs(page) -> None:
    """Visit every tab once (so all elem_ids exist in the DOM), then return to the first."""
    tabs = page.locator("[role=tab]")
    n = tabs.count()
    if n < 2:
        return
    for i in list(range(1, n)) + [0]:
        if tabs.nth(i).is_visible():
            tabs.nth(i).click()
            page.wait_for_timeout(150)


def ensure_visible(page, selector: str) -> None:
    """Make `selector` visible as a user would: go to the tab that holds it, and open the
    accordion it sits in only when needed (a first pass over the tabs opens no accordion)."""
    loc = page.locator(selector)

    def shown() -> bool:
        return bool(loc.count()) and loc.first.is_visible()

    if shown():
        return
    tabs = page.locator("[role=tab]")
    for open_closed in (False, True):
        if open_closed:
            open_accordions(page)
            if shown():
                return
        for i in range(tabs.count()):
            tabs.nth(i).click()
            page.wait_for_timeout(200)
            if shown():
                return
            if open_closed or loc.count():  # here, inside a closed accordion
                open_accordions(page)
                if shown():
                    return
    loc.first.wait_for(state="visible", timeout=5_000)


def choose(page, elem_id: str, value: str) -> None:
    """Select `value` in a Radio (input value) or Dropdown (typed + Enter) with elem_id."""
    ensure_visible(page, f"#{elem_id}")
    radio = page.locator(f"#{elem_id} input[type=radio][value='{value}']")
    if radio.count():
        assert radio.first.is_enabled(), f"the choice {value!r} in #{elem_id} is disabled"
        page.locator(f"#{elem_id} label:has(input[value='{value}'])").first.click()
        wait_until(lambda: radio.first.is_checked(), 5, f"{value} checked in #{elem_id}", page=page)
        return
    # Dropdown: type the value and pick the matching option.
    box = page.locator(f"#{elem_id} input").first
    box.click()
    option = page.locator(f"ul.options li[data-value='{value}'], ul.options li[aria-label='{value}']")
    if option.count():
        option.first.click()
    else:
        box.fill(value)
        box.press("Enter")
    page.wait_for_timeout(300)


def set_checkbox(page, elem_id: str, checked: bool = True) -> None:
    """Tick (or untick) the gr.Checkbox with elem_id, as a user would: by clicking its label."""
    ensure_visible(page, f"#{elem_id}")
    box = page.locator(f"#{elem_id} input[type=checkbox]").first
    if box.is_checked() != checked:
        page.locator(f"#{elem_id} label").first.click()
    wait_until(lambda: box.is_checked() == checked, 5, f"#{elem_id} to be {'ticked' if checked else 'clear'}",
               page=page)


def checked_values(page, elem_id: str) -> list[str]:
    """The labels of the ticked boxes of a gr.CheckboxGroup."""
    return page.evaluate(
        """(id) => Array.from(document.querySelectorAll('#' + id + ' label'))
            .filter(l => { const i = l.querySelector('input[type=checkbox]'); return i && i.checked; })
            .map(l => l.innerText.trim())""",
        elem_id,
    )


def table_rows(page, elem_id: str) -> list[str]:
    """The text of each body row of a gr.Dataframe (Gradio 6 draws them as role=row divs; the
    header row is a <tr> in <thead>)."""
    return page.evaluate(
        r"""(id) => Array.from(document.querySelectorAll('#' + id + ' [role=row]'))
            .filter(r => !r.closest('thead'))
            .map(r => r.innerText.replace(/\s+/g, ' ').trim()).filter(t => t)""",
        elem_id,
    )


def set_number(page, elem_id: str, value: float | int, settle_ms: int = 600) -> bool:
    """Fill a gr.Number/gr.Slider with elem_id; False when the app has no such field.

    Re-checks after `settle_ms`: another event (e.g. a strategy change resetting its default
    epochs) may overwrite the field just after we typed; then we type again."""
    try:
        ensure_visible(page, f"#{elem_id}")
    except Exception:
        return False
    loc = page.locator(f"#{elem_id} input[type=number], #{elem_id} input")
    if loc.count() == 0:
        return False
    field = loc.first
    want = str(value)
    for _ in range(4):
        field.scroll_into_view_if_needed()
        field.fill(want)
        field.press("Tab")  # Gradio commits a Number on blur
        page.wait_for_timeout(settle_ms)
        if field.input_value() == want:
            return True
    raise AssertionError(f"#{elem_id} does not keep the value {want}: it shows {field.input_value()!r}")


def wait_images_loaded(page, selector: str, timeout_s: float = 20) -> None:
    """Wait until every <img> inside `selector` has loaded (so screenshots show thumbnails).
    Lazy images below the window would wait for a scroll: they are asked to load now."""
    page.evaluate("(sel) => document.querySelectorAll(sel + ' img[loading=lazy]')"
                  ".forEach(i => { i.loading = 'eager'; })", selector)
    wait_until(
        lambda: page.evaluate(
            "(sel) => Array.from(document.querySelectorAll(sel + ' img'))"
            ".every(i => i.complete && i.naturalWidth > 0)", selector),
        timeout_s, f"images in {selector} to load", page=page,
    )


def busy(page, elem_id: str) -> bool:
    """True while Gradio shows its loading overlay (a pending/queued event) on #elem_id."""
    return bool(page.evaluate(
        """(id) => {
            const root = document.getElementById(id);
            if (!root) return false;
            return Array.from(root.querySelectorAll('[data-testid=status-tracker]'))
                .some(t => !t.classList.contains('hide') && t.offsetParent !== null
                           && getComputedStyle(t).visibility !== 'hidden');
        }""",
        elem_id,
    ))


def wait_idle(page, elem_id: str, timeout_s: float = 60) -> None:
    wait_until(lambda: not busy(page, elem_id), timeout_s, f"#{elem_id} to finish loading", page=page)


def upload(page, elem_id: str, path: Path | str) -> None:
    """Put a file into the (hidden) file input inside #elem_id."""
    ensure_visible(page, f"#{elem_id}")
    file_input = page.locator(f"#{elem_id} input[type=file]")
    if file_input.count() == 0:
        # a file is already shown: a user presses the box's "Clear" (x) before dropping another
        wait_idle(page, elem_id)
        page.locator(f"#{elem_id} button[aria-label='Clear']").first.click()
        file_input.first.wait_for(state="attached", timeout=10_000)
    file_input.first.set_input_files(str(path))


def button_enabled(page, selector: str) -> bool:
    loc = page.locator(selector)
    if loc.count() == 0:
        return False
    btn = loc.first if loc.first.evaluate("e => e.tagName") == "BUTTON" else loc.locator("button").first
    return btn.is_visible() and btn.is_enabled()


_VISIBLE_MARKS_JS = """(id) => {
    const root = document.getElementById(id);
    if (!root) return {lines: 0, points: 0, other: 0, canvas: false};
    const embed = root.querySelector('.vega-embed');
    if (!embed) return {lines: 0, points: 0, other: 0, canvas: false};
    const shown = (el, prop) => {
        const cs = getComputedStyle(el);
        const v = cs[prop];
        return v && v !== 'none' && v !== 'transparent' && !/rgba\\(.*,\\s*0\\)$/.test(v)
               && parseFloat(cs.opacity || '1') > 0 && parseFloat(el.getAttribute('opacity') || '1') > 0;
    };
    let lines = 0, points = 0, other = 0;
    embed.querySelectorAll('g.role-mark:not(.hover_voronoi):not(.hover_marks) > path').forEach(p => {
        const d = p.getAttribute('d') || '';
        const kind = p.parentElement.classList;
        if (kind.contains('mark-line')) {
            // a drawn line: a path with vertices and a visible stroke
            if (d.length > 6 && shown(p, 'stroke')) lines += (d.match(/[ML]/g) || []).length;
        } else if (kind.contains('mark-symbol')) {
            if (shown(p, 'fill') || shown(p, 'stroke')) points += 1;
        } else if (d.length > 6 && (shown(p, 'fill') || shown(p, 'stroke'))) {
            other += 1;   // bars, heat-map cells, areas
        }
    });
    return {lines, points, other, canvas: !!embed.querySelector('canvas')};
}"""


def plot_marks(page, elem_id: str) -> dict:
    """Visible data marks of a Gradio 6 (vega) plot: line vertices, points, other (bars, cells)."""
    return page.evaluate(_VISIBLE_MARKS_JS, elem_id)


def plot_has_data(page, elem_id: str) -> bool:
    """True once the plot drew *visible* data: a stroked line, points, bars/cells or a canvas.

    (An empty-state plot, or a line drawn without a stroke colour, does not count: Gradio 6.31
    draws invisible lines when a LinePlot with `color=` starts from an empty DataFrame.)"""
    m = plot_marks(page, elem_id)
    return bool(m["lines"] or m["points"] or m["other"] or m["canvas"])


def count_line_points(page, elem_id: str) -> int:
    """How many visible vertices the lines of a LinePlot have (grows while training streams rows)."""
    m = plot_marks(page, elem_id)
    return int(m["lines"] or m["points"])


def point_markers(page, elem_id: str) -> int:
    """Visible point markers of a LinePlot (per-epoch values are marked, so that a curve with a
    single point, after epoch 1, still shows)."""
    return int(page.evaluate(
        """(id) => Array.from(document.querySelectorAll('#' + id + ' g.mark-symbol.role-mark path'))
            .filter(p => parseFloat(getComputedStyle(p).opacity) > 0 && p.getBoundingClientRect().width >= 4)
            .length""",
        elem_id,
    ))


def series_colours(page, elem_id: str) -> dict[str, str]:
    """{legend label: colour of its symbol} of a vega plot's colour legend."""
    return page.evaluate(
        """(id) => {
            const out = {};
            document.querySelectorAll('#' + id + ' g.role-legend-entry g.role-scope > g').forEach(g => {
                const sym = g.querySelector('g.role-legend-symbol path');
                const label = g.querySelector('g.role-legend-label text');
                if (sym && label) out[label.textContent] = sym.getAttribute('stroke') || sym.getAttribute('fill');
            });
            return out;
        }""",
        elem_id,
    )


def is_shown(page, selector: str) -> bool:
    loc = page.locator(selector)
    return bool(loc.count()) and loc.first.is_visible()


def error_toasts(page) -> list[str]:
    """Texts of visible Gradio error toasts (the generic red "Error" box)."""
    toasts = page.locator("[data-testid=toast-body].error, .toast-body.error")
    return [toasts.nth(i).inner_text() for i in range(toasts.count()) if toasts.nth(i).is_visible()]


def component_errors(page) -> list[str]:
    """Status trackers that show Gradio's generic per-component "Error" badge."""
    trackers = page.locator("[data-testid=status-tracker]")
    out = []
    for i in range(trackers.count()):
        t = trackers.nth(i)
        try:
            if t.is_visible() and "error" in t.inner_text(timeout=1_000).lower():
                out.append(t.inner_text())
        except Exception:
            pass
    return out


def assert_no_crash_signs(page) -> None:
    body = page.inner_text("body")
    assert "Traceback" not in body, f"a Python traceback is shown in the page:\n{body[:3000]}"
    assert not error_toasts(page), f"a generic Gradio error toast is shown: {error_toasts(page)}"
    assert not component_errors(page), f"a component shows Gradio's 'Error' badge: {component_errors(page)}"


# --------------------------------------------------------------------------- bad uploads


def _png_bytes(shade: int = 0, size: int = 28) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("L", (size, size), color=255 - shade)
    ImageDraw.Draw(img).ellipse((6, 6, size - 6, size - 6), outline=shade, width=3)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def build_empty_zip(folder: Path) -> Path:
    return _zip(folder / "empty.zip", {})


def build_not_a_zip(folder: Path) -> Path:
    path = folder / "holiday_photos.zip"
    path.write_bytes(b"This is a plain text note that someone renamed to .zip\n" * 20)
    return path


def build_zip_slip(folder: Path, marker: str) -> Path:
    """A zip with normal class folders plus entries that try to escape the extraction folder.

    `marker` is a unique name: the test checks no file with it appears in /tmp afterwards."""
    members = {f"digits/{c}/{i}.png": _png_bytes(60 * c) for c in (1, 2) for i in range(6)}
    members["../" * 24 + f"tmp/{marker}_rel.png"] = _png_bytes(10)  # climbs to / from any workdir
    members[f"/tmp/{marker}_abs.png"] = _png_bytes(20)
    return _zip(folder / "sneaky.zip", members)


def build_single_class_zip(folder: Path) -> Path:
    return _zip(folder / "only_cats.zip", {f"cats/{i}.png": _png_bytes(i * 20) for i in range(8)})


def build_one_example_class_zip(folder: Path) -> Path:
    members = {f"cats/{i}.png": _png_bytes(i * 20) for i in range(8)}
    members["dogs/only_dog.png"] = _png_bytes(200)
    return _zip(folder / "one_dog.zip", members)


def build_corrupt_image_zip(folder: Path) -> Path:
    members = {f"{c}/{i}.png": _png_bytes(60 * i) for c in ("cats", "dogs") for i in range(6)}
    members["dogs/broken.png"] = _png_bytes(100)[:40]  # a truncated PNG (header only)
    return _zip(folder / "broken_image.zip", members)


def build_empty_csv(folder: Path) -> Path:
    path = folder / "empty.csv"
    path.write_bytes(b"")
    return path


def build_csv_without_label(folder: Path) -> Path:
    """Texts plus a unique id per row: nothing that could serve as a label column."""
    path = folder / "reviews_no_label.csv"
    rows = ["review_id,text"] + [
        f"R-{1000 + i},\"review number {i}: a rather long opinion about a film, its actors and its plot\""
        for i in range(20)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def build_binary_csv(folder: Path) -> Path:
    path = folder / "data.csv"
    path.write_bytes(bytes(range(256)) * 8 + b"\x00\xff\xfe\x00" * 64)
    return path


# name -> (builder(folder) -> Path, fragments that must ALL appear in #data-error, case-insensitive).
# The fragments are the stable key words of tl_ui/data's messages plus the file's own name.
BAD_INPUTS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "empty-zip": (build_empty_zip, ("empty.zip", "is empty")),
    "not-a-zip": (build_not_a_zip, ("holiday_photos.zip", "not a zip")),
    "single-class": (build_single_class_zip, ("only_cats.zip", "only one class")),
    "one-example-class": (build_one_example_class_zip, ("dogs", "only 1 image")),
    "corrupt-image": (build_corrupt_image_zip, ("broken.png", "damaged")),
    "empty-csv": (build_empty_csv, ("empty.csv", "empty")),
    "csv-without-label": (build_csv_without_label, ("reviews_no_label.csv", "looks like a label")),
    "binary-csv": (build_binary_csv, ("data.csv", "not a text table")),
}


def sample_digit_png(folder: Path) -> Path:
    """One PNG from assets/sample_digits.zip, written into `folder` (as a user would save one)."""
    with zipfile.ZipFile(REPO_ROOT / "assets" / "sample_digits.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.lower().endswith(".png") and "__MACOSX" not in n)
        name = names[0]
        out = folder / f"digit_{Path(name).parent.name}.png"
        out.write_bytes(zf.read(name))
    return out


# --------------------------------------------------------------------------- fallback launcher
