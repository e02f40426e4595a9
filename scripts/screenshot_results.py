"""Refresh docs/screenshots/results.png (the README's picture of the Results step).

Does what the README's walk-through says, with every default: open the page, press "Use the
sample images", press "Start training" (EfficientNet-Lite0, linear probe, default epochs and image
size), wait until it finishes, press "See the results" and take a full-page screenshot.

    .venv/bin/python scripts/screenshot_results.py [--out docs/screenshots/results.png]

Needs Debian's Chromium (/usr/bin/chromium) and the playwright package (no network).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import browser_helpers as bh  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots" / "results.png")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the run")
    args = parser.parse_args()

    from tl_ui.app.webapp import build_app
    from playwright.sync_api import sync_playwright
    from tl_ui.app.server import start_in_thread
    from tl_ui.core.settings import Settings

    settings = Settings(runs_dir=Path(tempfile.mkdtemp(prefix="tl-shot-")), max_jobs=1)
    server = start_in_thread(build_app(settings), settings=settings)
    try:
        with sync_playwright() as pw:
            browser = bh.launch_chromium(pw)
            page = bh.new_page(browser)
            page.goto(server.url)
            page.wait_for_selector("[role=tab]", state="attached", timeout=60_000)
            bh.render_all_tabs(page)
            bh.ensure_visible(page, "#use-sample-image")
            page.locator("#use-sample-image").click()
            bh.wait_for_regex(page, "#data-summary", r"\d+\s+images", timeout_s=120)
            bh.ensure_visible(page, "#start-btn")
            started = time.monotonic()
            page.locator("#start-btn").click()
            text = bh.wait_for_text(page, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=args.timeout)
            if "Finished" not in text:
                print(f"the run did not finish: {text}", file=sys.stderr)
                return 1
            print(f"trained in {time.monotonic() - started:.0f} s: {text}")
            page.locator("#to-results").click()
            bh.wait_for_regex(page, "#metrics-table", "accuracy", timeout_s=60)
            bh.wait_until(lambda: page.locator("#confusion-plot td").count() > 4, 30, "the confusion matrix",
                          page=page)
            bh.wait_images_loaded(page, "#mistakes-gallery")
            page.wait_for_timeout(500)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            print(f"saved {args.out}")
            browser.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
