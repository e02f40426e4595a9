"""The app as a Hugging Face Space shows it: inside an iframe of a page from another site. Host
page on `localhost`, app on `127.0.0.1` (two sites), a fresh Chromium, the sample digits, small
settings. This Chromium blocks third-party cookies and denies the frame its storage, the strictest
case: the old `SameSite=Lax` cookie was never sent (mistake images and the download answered 404),
and `gr.BrowserState` stopped the page from rendering. What works there: the page's own connection
(bound on load), signed file links, and a partitioned (CHIPS) cookie for the reload."""
from __future__ import annotations

import http.server
import re
import threading
import zipfile

import httpx
import pytest

from tests.helpers import browser_helpers as bh

pytestmark = pytest.mark.browser


class _HostPage(http.server.BaseHTTPRequestHandler):
    app_url = ""

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = (f"<!doctype html><title>Host</title><h1>A page of another site</h1>"
                f"<iframe id=space src='{self.app_url}' width=1340 height=2600 "
                f"style='border:0'></iframe>").encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    from tl_ui.app.server import start_in_thread
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    settings = Settings(runs_dir=tmp_path_factory.mktemp("space-runs"), max_jobs=1, offline=True)
    server = start_in_thread(build_app(settings), settings=settings)
    handler = type("Host", (_HostPage,), {"app_url": server.url})
    host = http.server.ThreadingHTTPServer(("localhost", 0), handler)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{host.server_address[1]}/", server
    finally:
        host.shutdown()
        server.stop()


def _frame(page):
    page.wait_for_selector("iframe#space")
    frame = page.frame_locator("iframe#space")
    frame.locator(".gradio-container").first.wait_for(state="attached", timeout=60_000)
    handle = page.query_selector("iframe#space").content_frame()
    handle.wait_for_selector("[role=tab]", state="attached", timeout=60_000)
    bh.render_all_tabs(handle)   # Gradio renders a tab's children on first visit only
    handle.wait_for_selector("#data-upload", state="attached", timeout=30_000)
    return handle


def test_the_space_works_in_a_cross_site_frame_without_cookies(embedded, tmp_path):
    from playwright.sync_api import sync_playwright

    host_url, server = embedded
    with sync_playwright() as pw:
        browser = bh.launch_chromium(pw)
        try:
            page = bh.new_page(browser)
            page.goto(host_url)
            app = _frame(page)
            storage = app.evaluate("() => { try { window.localStorage.length; return 'allowed'; } "
                                   "catch (e) { return 'denied'; } }")

            bh.ensure_visible(app, "#use-sample-image")
            app.locator("#use-sample-image").first.click()
            bh.wait_for_regex(app, "#data-summary", r"\d+\s+(examples|images)", timeout_s=120)
            bh.set_number(app, "epochs", 3)
            bh.set_number(app, "image-size", 64)
            bh.ensure_visible(app, "#start-btn")
            app.locator("#start-btn").first.click()
            text = bh.wait_for_text(app, "#train-status", ["Finished", "Failed", "Stopped"], timeout_s=400)
            assert "finished" in text.lower(), text
            if app.locator("#to-results:visible").count():
                app.locator("#to-results").click()
            bh.wait_for_regex(app, "#metrics-table", r"accuracy", timeout_s=60)

            # every mistake image answers 200 (they load in the frame, and their signed links work
            # without any cookie)
            bh.ensure_visible(app, "#mistakes-gallery")
            bh.wait_images_loaded(app, "#mistakes-gallery")
            sources = app.eval_on_selector_all("#mistakes-gallery img", "els => els.map(e => e.src)")
            assert sources, "no mistake images shown"
            assert all(app.evaluate("(src) => [...document.images].find(i => i.src === src).naturalWidth > 0", s)
                       for s in sources)
            for src in set(sources):
                assert httpx.get(src, timeout=30).status_code == 200, src
            bh.screenshot(page, 21, "space-results-in-frame")

            # the model zip downloads and unzips
            bh.ensure_visible(app, "#download-model")
            with page.expect_download(timeout=60_000) as download:
                app.locator("#download-model").first.click()
            saved = tmp_path / "model.zip"
            download.value.save_as(saved)
            with zipfile.ZipFile(saved) as zf:
                assert any(n.endswith("model.safetensors") for n in zf.namelist())

            # try-it answers
            bh.upload(app, "try-image", bh.sample_digit_png(tmp_path))
            app.wait_for_selector("#try-image img", timeout=15_000)
            bh.ensure_visible(app, "#try-btn")
            app.locator("#try-btn").first.click()
            bh.wait_for_regex(app, "#try-output", r"\d+(\.\d+)?\s*%|0\.\d+", timeout_s=60)
            run_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{6}", bh.text_of(app, "#results-summary")).group(0)

            # a reload of the host page still lists the run (the token lives in the frame's storage)
            page.reload()
            app = _frame(page)
            bh.ensure_visible(app, "#runs-table")
            bh.wait_for_text(app, "#runs-table", "efficientnet", timeout_s=60)
            bh.screenshot(page, 22, "space-reloaded-lists-the-run")
            finished = [r for owner_dir in server.lab.workspace.root.iterdir() if owner_dir.is_dir()
                        for r in (owner_dir / "runs").glob(run_id)]
            assert len(finished) == 1, "the run should exist once, under the frame's owner"
            # the old Lax cookie is never sent in this frame; the partitioned one is
            cookies = page.context.cookies(server.url)
            assert all(c.get("sameSite") == "None" and c.get("secure") for c in cookies if c["name"] == "tl_sid")
        finally:
            browser.close()
    print(f"frame storage: {storage}")
