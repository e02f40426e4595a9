"""Serve the Blocks app: a small FastAPI shell around Gradio that adds what a shared server needs.

* a `tl_sid` session cookie on first contact (identifies anonymous browser sessions and
  gradio_client sessions, which keep the cookie from their first response);
* the file guard: a request for anything under `<gradio cache>/tl_private/<owner_hash>/` is answered
  only for that owner (authenticated user, else the cookie); everyone else gets 404, so a copied or
  guessed file URL of another session's model does not work;
* Gradio mounted at `/` with auth, upload limit, root path, `ssr_mode=False`;
* `serve()` (blocking, for `app.py`) and `start_in_thread()` (for tests) run it with uvicorn.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Optional

import gradio as gr

from tl_ui.auth import FailureDelays, LoginThrottle
from tl_ui.service.owners import SID_COOKIE, Owner
from tl_ui.service.private_files import PRIVATE_DIRNAME, private_path_owner
from tl_ui.settings import Settings

log = logging.getLogger(__name__)

COOKIE_MAX_AGE = 30 * 24 * 3600

# System fonts only: nothing is fetched (offline / Space) and no bundled display font stands in
# for the user's normal UI font.
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def THEME():  # noqa: N802 (a theme factory)
    return gr.themes.Soft(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def _cookies(scope) -> dict[str, str]:
    jar = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header: ignore it
                continue
    return {k: m.value for k, m in jar.items()}


class SessionAndFileGuard:
    """Pure ASGI middleware (streams and SSE pass through untouched)."""

    def __init__(self, app, get_gradio_app, private_root_fn):
        self.app = app
        self._get_gradio_app = get_gradio_app
        self._private_root_fn = private_root_fn

    def _username(self, cookies: dict[str, str]) -> Optional[str]:
        gapp = self._get_gradio_app()
        if gapp is None or not getattr(gapp, "auth", None):
            return None
        cid = gapp.cookie_id
        token = cookies.get(f"access-token-{cid}") or cookies.get(f"access-token-unsecure-{cid}")
        return gapp.tokens.get(token) if token else None

    def requester_hash(self, cookies: dict[str, str]) -> Optional[str]:
        user = self._username(cookies)
        if user:
            return Owner("user", user).hash
        sid = cookies.get(SID_COOKIE)
        if sid:
            return Owner("session", "sid-" + sid).hash
        return None

    def _is_private_request(self, path: str) -> Optional[str]:
        """Owner hash ('' if unreadable) when the request names a private file, else None."""
        for text in (path, urllib.parse.unquote(path)):
            if PRIVATE_DIRNAME in text:
                marker = text.find(PRIVATE_DIRNAME)
                owner = private_path_owner(text[text.rfind("=", 0, marker) + 1:])
                if owner is not None:
                    return owner
        # the path may reach the private folder without naming it (symlinks, odd spellings)
        if "file=" in path or "/file/" in path:
            raw = path.split("file=", 1)[1] if "file=" in path else path.split("/file/", 1)[1]
            try:
                real = Path(os.path.realpath(urllib.parse.unquote(raw)))
                root = Path(os.path.realpath(self._private_root_fn()))
                if real.is_relative_to(root):
                    rel = real.relative_to(root).parts
                    return rel[0] if rel else ""
            except (OSError, ValueError):
                return ""
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cookies = _cookies(scope)
        path = scope.get("path", "")
        owner_in_path = self._is_private_request(path)
        if owner_in_path is not None:
            requester = self.requester_hash(cookies)
            if not owner_in_path or requester is None or not secrets.compare_digest(owner_in_path, requester):
                log.warning("refused private file request from another session: %s", path[-80:])
                await _plain_response(send, 404, b"Not found.")
                return
        if SID_COOKIE in cookies:
            return await self.app(scope, receive, send)

        new_sid = secrets.token_urlsafe(24)
        forwarded = dict(scope.get("headers", [])).get(b"x-forwarded-proto", b"").decode()
        secure = scope.get("scheme") == "https" or forwarded == "https"
        attrs = f"{SID_COOKIE}={new_sid}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; " + \
                ("SameSite=None; Secure" if secure else "SameSite=Lax")

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", attrs.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_cookie)


async def _plain_response(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_server_app(webapp, settings: Optional[Settings] = None):
    """The FastAPI app: middleware + Gradio mounted at '/'. `webapp`: a `tl_ui.webapp.WebApp`."""
    from fastapi import FastAPI
    from gradio.routes import App as GradioApp
    from starlette.routing import Mount

    from tl_ui.ui.theme import CSS

    lab, demo = webapp.lab, webapp.demo
    settings = settings or webapp.settings
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    login_check = settings.login_check()

    @app.get("/healthz")
    def healthz():
        return {"ok": True, "running": lab.runner.busy, "waiting": lab.runner.waiting}

    app = gr.mount_gradio_app(
        app, demo, path="/",
        auth=login_check,
        auth_message="Transfer Lab: please sign in with the user name and password you were given.",
        root_path=settings.root_path or None,
        max_file_size=settings.max_upload_bytes,
        allowed_paths=[],          # never the runs directory
        ssr_mode=False,
        show_error=False,
        footer_links=["api", "settings"],
        run_history=False,
        css=CSS,
        theme=THEME(),
    )

    def gradio_app():
        for route in app.routes:
            if isinstance(route, Mount) and isinstance(route.app, GradioApp):
                return route.app
        return None

    private_root = lab.private.root
    if login_check is not None:
        app.add_middleware(LoginThrottle, delays=FailureDelays())   # per address; LoginCheck: per user
    app.add_middleware(SessionAndFileGuard, get_gradio_app=gradio_app, private_root_fn=lambda: private_root)
    return app


@dataclass
class RunningServer:
    url: str
    server: object
    thread: threading.Thread
    webapp: object            # tl_ui.webapp.WebApp

    @property
    def lab(self):
        return self.webapp.lab

    def stop(self, timeout: float = 20.0) -> None:
        self.webapp.lab.close()
        self.server.should_exit = True
        self.thread.join(timeout)


def _uvicorn_server(app, host: str, port: int):
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2,
                            ws="none")
    return uvicorn.Server(config)


def start_in_thread(webapp, host: str = "127.0.0.1", port: int = 0,
                    settings: Optional[Settings] = None, timeout: float = 60.0) -> RunningServer:
    """Start the server without blocking (the `prevent_thread_lock=True` of this app); port 0 picks
    a free port. Returns the base URL."""
    import socket

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    app = create_server_app(webapp, settings)
    server = _uvicorn_server(app, host, port)
    thread = threading.Thread(target=server.run, name="tl-server", daemon=True)
    thread.start()
    deadline = time.time() + timeout
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError(f"The server did not start on {host}:{port}.")
        time.sleep(0.05)
    webapp.lab.start_background()
    return RunningServer(f"http://{host}:{port}/", server, thread, webapp)


def serve(webapp) -> None:
    """Run until interrupted (Ctrl+C / SIGTERM); running jobs are asked to stop on the way out."""
    settings = webapp.settings
    app = create_server_app(webapp, settings)
    webapp.lab.start_background()
    server = _uvicorn_server(app, settings.host, settings.port)
    shown_host = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0") else settings.host
    print(f"Transfer Lab is running at http://{shown_host}:{settings.port}{settings.root_path or '/'}", flush=True)
    try:
        server.run()
    finally:
        webapp.lab.close()
