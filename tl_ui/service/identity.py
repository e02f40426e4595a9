"""Who is asking, without trusting anything the client made up, and without needing cookies.

* **Owner tokens**: the server issues `<random>.<HMAC(secret, random)>`. The page keeps its token
  in the `tl_sid` cookie where cookies work and in its own storage (`gr.BrowserState`) where they
  do not (a Space inside huggingface.co's iframe); on page load the token is bound to the page's
  connection (`bind`). A token whose signature does not verify is a new anonymous owner, never
  someone else's; a logged-in user is their user name.
* **Capability paths** for private files: `tl_private/<owner hash>/c<expiry>-<signature>/<file>`,
  the signature binding the owner hash, the folder and the expiry (like a pre-signed storage URL).
  The file guard serves a valid, unexpired one without any cookie; an altered, expired or other
  owner's path is answered 404.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from tl_ui.service.owners import SID_COOKIE, Owner

_TOKEN = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{16,64})$")
_CAPABILITY = re.compile(r"^c(\d{10})-([A-Za-z0-9_-]{22})$")
SECRET_ENV = "TL_SECRET_KEY"


def load_secret(runs_dir: Path) -> bytes:
    """TL_SECRET_KEY, else a random key kept in `<runs_dir>/.secret_key` (mode 0600), so tokens
    and file links survive restarts of a server that keeps its runs folder."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV].encode()
    path = Path(runs_dir) / ".secret_key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    except FileExistsError:  # another process made it first
        return path.read_bytes()


def _sign(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


class Identity:
    def __init__(self, secret: bytes, max_bindings: int = 50_000):
        self.secret = secret
        self._bound: OrderedDict[str, Owner] = OrderedDict()   # page connection -> owner
        self._lock = threading.Lock()
        self.max_bindings = max_bindings

    # -- owner tokens -----------------------------------------------------------------------------
    def new_token(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{_sign(self.secret, 'owner:' + nonce)}"

    def owner_of_token(self, token: Optional[str]) -> Optional[Owner]:
        match = _TOKEN.match(token or "")
        if not match or not hmac.compare_digest(match.group(2), _sign(self.secret, "owner:" + match.group(1))):
            return None
        return Owner("session", "tok-" + match.group(1))

    def bind(self, request, stored_token: Optional[str]) -> tuple[Owner, str]:
        """On page load: the page's owner and the token it should keep. A valid token from the
        page's storage wins, then one from the cookie; otherwise a new one is issued."""
        username = getattr(request, "username", None)
        cookie = _cookies(request).get(SID_COOKIE)
        token = next((t for t in (stored_token, cookie) if self.owner_of_token(t)), None) or self.new_token()
        owner = Owner("user", str(username)) if username else self.owner_of_token(token)
        session = getattr(request, "session_hash", None)
        if session:
            with self._lock:
                if session not in self._bound:       # first binding wins: never re-pointed
                    self._bound[session] = owner
                    while len(self._bound) > self.max_bindings:
                        self._bound.popitem(last=False)
                owner = self._bound[session]
        return owner, token

    def owner(self, request) -> Owner:
        """The owner of an event or API call: a logged-in user; the owner bound to this page; the
        owner of a valid signed cookie; else a new anonymous owner (each call: nothing the client
        chose points at anyone's files)."""
        if request is None:
            return Owner("session", "anon-" + uuid.uuid4().hex)
        username = getattr(request, "username", None)
        if username:
            return Owner("user", str(username))
        session = getattr(request, "session_hash", None)
        if session:
            with self._lock:
                bound = self._bound.get(session)
            if bound is not None:
                return bound
        return self.owner_of_token(_cookies(request).get(SID_COOKIE)) or \
            Owner("session", "anon-" + uuid.uuid4().hex)

    # -- capability folders ---------------------------------------------------------------------------
    def capability_folder(self, owner_hash: str, ttl_s: float) -> str:
        expiry = int(time.time() + ttl_s)
        return f"c{expiry:010d}-{_sign(self.secret, f'file:{owner_hash}:{expiry}')}"

    def capability_valid(self, owner_hash: str, folder: str, now: Optional[float] = None) -> bool:
        match = _CAPABILITY.match(folder or "")
        if not match:
            return False
        expiry = int(match.group(1))
        if expiry < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(match.group(2), _sign(self.secret, f"file:{owner_hash}:{expiry}"))


def _cookies(request) -> dict:
    try:
        return dict(getattr(request, "cookies", None) or {})
    except Exception:  # gr.Request without an underlying request
        return {}
