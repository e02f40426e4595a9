"""Serve the Blocks app: a small FastAPI shell around Gradio that adds what a shared server needs.

* a `tl_sid` cookie holding a server-signed owner token on first contact (anonymous browser and
  gradio_client sessions; where cookies are blocked the page keeps the token itself);
* the file guard: a request for anything under `<gradio cache>/tl_private/<owner_hash>/` is answered
  only for that owner (authenticated user, else the cookie); everyone else gets 404, so a copied or
  guessed file URL of another session's model does not work;
* Gradio mounted at `/` with auth, upload limit, root path, `ssr_mode=False`;
* `serve()` (blocking, for `app.py`) and `start_in_thread()` (for tests) run it with uvicorn, each
  first taking the runs folder's lock (`<runs_dir>/.lock`, held for the server's life): a second
  server on a folder in use refuses to start with a plain message.
"""
from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Optional

import gradio as gr

from tl_ui.core.auth import FailureDelays, LoginThrottle
from tl_ui.service.owners import SID_COOKIE, Owner
from tl_ui.service.private_files import PRIVATE_DIRNAME, private_path_parts
from tl_ui.core.settings import Settings

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
COOKIE_MAX_AGE = 30 * 24 * 3600

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

    def __init__(self, app, get_gradio_app, private_root_fn, identity):
        self.app = app
        self._get_gradio_app = get_gradio_app
        self._private_root_fn = private_root_fn
        self.identity = identity

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
        owner = self.identity.owner_of_token(cookies.get(SID_COOKIE))
        return owner.hash if owner else None

    def _private_target(self, path: str) -> Optional[tuple[str, str]]:
        """(owner hash, the folder below it) when the request names a private file (('', '') if
        unreadable), else None."""
        for text in (path, urllib.parse.unquote(path)):
            if PRIVATE_DIRNAME in text:
                marker = text.find(PRIVATE_DIRNAME)
                parts = private_path_parts(text[text.rfind("=", 0, marker) + 1:])
                if parts is not None:
                    return (parts + ["", ""])[0], (parts + ["", ""])[1]
        # the path may reach the private folder without naming it (symlinks, odd spellings)
        if "file=" in path or "/file/" in path:
            raw = path.split("file=", 1)[1] if "file=" in path else path.split("/file/", 1)[1]
            try:
                real = Path(os.path.realpath(urllib.parse.unquote(raw)))
                root = Path(os.path.realpath(self._private_root_fn()))
                if real.is_relative_to(root):
                    rel = list(real.relative_to(root).parts) + ["", ""]
                    return rel[0], rel[1]
            except (OSError, ValueError):
                return "", ""
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cookies = _cookies(scope)
        path = scope.get("path", "")
        target = self._private_target(path)
        if target is not None:
            owner_in_path, folder = target
            requester = self.requester_hash(cookies)
            signed = bool(owner_in_path) and self.identity.capability_valid(owner_in_path, folder)
            own = bool(owner_in_path) and requester is not None and secrets.compare_digest(owner_in_path, requester)
            if not (signed or own):
                log.warning("refused private file request (no valid link or owner): %s", path[-80:])
                await _plain_response(send, 404, b"Not found.")
                return
        if self.identity.owner_of_token(cookies.get(SID_COOKIE)):
            return await self.app(scope, receive, send)

        new_sid = self.identity.new_token()   # signed: a made-up cookie value is never anyone's
        attrs = f"{SID_COOKIE}={new_sid}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; " + _cookie_scope(scope)

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", attrs.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_cookie)


def _cookie_scope(scope) -> str:
    """Cookie attributes. In a secure context (https, or the loopback address a browser treats as
    secure) the cookie is partitioned (CHIPS): a browser that blocks third-party cookies still keeps
    it inside a Space's iframe, for that embedding site only. Over plain http elsewhere: Lax."""
    headers = dict(scope.get("headers", []))
    forwarded = headers.get(b"x-forwarded-proto", b"").decode()
    host = headers.get(b"host", b"").decode().rsplit(":", 1)[0].strip("[]")
    secure = scope.get("scheme") == "https" or forwarded == "https" or host in ("localhost", "127.0.0.1", "::1")
    return "SameSite=None; Secure; Partitioned" if secure else "SameSite=Lax"


async def _plain_response(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_server_app(webapp, settings: Optional[Settings] = None):
    """The FastAPI app: middleware + Gradio mounted at '/'. `webapp`: a `tl_ui.app.webapp.WebApp`."""
    from fastapi import FastAPI
    from gradio.routes import App as GradioApp
    from starlette.routing import Mount

    from tl_ui.ui.theme import CSS, build_theme

    lab, demo = webapp.lab, webapp.demo
    settings = settings or webapp.settings
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    login_check = settings.login_check()

    @app.get("/healthz")
    def healthz():
        return {"ok": True, "running": lab.runner.busy, "waiting": lab.runner.waiting,
                "executor": lab.runner.executor_name}

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
        theme=build_theme(),
    )

    def gradio_app():
        for route in app.routes:
            if isinstance(route, Mount) and isinstance(route.app, GradioApp):
                return route.app
        return None

    private_root = lab.private.root
    if login_check is not None:
        app.add_middleware(LoginThrottle, delays=FailureDelays())   # per address; LoginCheck: per user
    app.add_middleware(SessionAndFileGuard, get_gradio_app=gradio_app, private_root_fn=lambda: private_root,
                       identity=lab.identity)
    return app


# -- one server per runs folder -------------------------------------------------------------------
class RunsFolderBusy(RuntimeError):
    """Another server process holds the runs folder; the message says what to do."""


_held_locks: dict[str, list] = {}      # lock path -> [fd, holders in this process]
_held_guard = threading.Lock()


class RunsFolderLock:
    """`fcntl.flock` on `<runs_dir>/.lock`, held while the server runs (the kernel lets go if the
    process dies, even by SIGKILL). Re-entrant within one process; another process is refused."""

    def __init__(self, runs_dir: str | Path):
        self.runs_dir = Path(runs_dir).expanduser().resolve()
        self.path = self.runs_dir / LOCK_NAME
        self.held = False

    def acquire(self) -> "RunsFolderLock":
        try:
            import fcntl
        except ImportError:  # not on Linux/macOS: no lock (one server per folder is then up to you)
            log.warning("no file locking here: make sure only one server uses %s", self.runs_dir)
            return self
        key = str(self.path)
        with _held_guard:
            if key in _held_locks:
                _held_locks[key][1] += 1
                self.held = True
                return self
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip()
                os.close(fd)
                raise RunsFolderBusy(
                    f"Another Transfer Lab server{f' (process {holder})' if holder.isdigit() else ''} is "
                    f"using the runs folder {self.runs_dir}. Stop that server first, or start this one with "
                    "another runs folder (--runs-dir, setting TL_RUNS_DIR).") from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            _held_locks[key] = [fd, 1]
            self.held = True
        return self

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with _held_guard:
            entry = _held_locks.get(str(self.path))
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] <= 0:
                del _held_locks[str(self.path)]
                os.close(entry[0])  # closing the descriptor drops the flock


def lock_runs_dir(settings: Settings) -> RunsFolderLock:
    """Take the runs folder for this process, or raise RunsFolderBusy."""
    return RunsFolderLock(settings.runs_dir).acquire()


@dataclass
class RunningServer:
    url: str
    server: object
    thread: threading.Thread
    webapp: object            # tl_ui.app.webapp.WebApp
    lock: Optional[RunsFolderLock] = None

    @property
    def lab(self):
        return self.webapp.lab

    def stop(self, timeout: float = 20.0) -> None:
        self.webapp.lab.close()
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.lock is not None:
            self.lock.release()


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

    lock = lock_runs_dir(settings or webapp.settings)   # RunsFolderBusy if another server has it
    try:
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
    except BaseException:
        lock.release()
        raise
    webapp.lab.start_background()
    return RunningServer(f"http://{host}:{port}/", server, thread, webapp, lock)


def serve(webapp) -> None:
    """Run until interrupted (Ctrl+C / SIGTERM); running jobs are asked to stop on the way out."""
    settings = webapp.settings
    try:
        lock = lock_runs_dir(settings)
    except RunsFolderBusy as exc:
        print(f"Transfer Lab cannot start: {exc}", file=sys.stderr, flush=True)
        webapp.lab.close()
        raise SystemExit(2) from None
    app = create_server_app(webapp, settings)
    webapp.lab.start_background()
    server = _uvicorn_server(app, settings.host, settings.port)
    shown_host = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0") else settings.host
    print(f"Transfer Lab is running at http://{shown_host}:{settings.port}{settings.root_path or '/'}", flush=True)
    try:
        server.run()
    finally:
        webapp.lab.close()
        lock.release()
