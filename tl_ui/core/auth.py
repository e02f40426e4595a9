"""Logins: salted scrypt password hashes, and failed logins slowed per user and per address.

`python -m tl_ui hash-password` prints a `scrypt$...` hash for a `TL_AUTH_FILE` line
(`alice:scrypt$16384$8$1$<salt>$<hash>`); plain `user:password` lines still work, with a warning.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import threading
import time
from typing import Iterable

log = logging.getLogger(__name__)

SCHEME = "scrypt"
_N, _R, _P = 2 ** 14, 8, 1          # scrypt cost: ~50 ms and 16 MB per check on a laptop CPU


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join([SCHEME, str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def is_hashed(stored: str) -> bool:
    return stored.startswith(SCHEME + "$")


def verify_password(password: str, stored: str) -> bool:
    if not is_hashed(stored):
        return hmac.compare_digest(password.encode(), stored.encode())
    try:
        _, n, r, p, salt, digest = stored.split("$")
        found = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(_unb64(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


class FailureDelays:
    """After each failure the next attempt for that key waits longer (0.5 s, 1 s, 2 s ... 16 s);
    a success, or 15 quiet minutes, forgets the failures."""

    def __init__(self, base_s: float = 0.5, max_s: float = 16.0, forget_after_s: float = 900.0):
        self.base_s, self.max_s, self.forget_after_s = base_s, max_s, forget_after_s
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def delay(self, key: str) -> float:
        with self._lock:
            count, last = self._failures.get(key, (0, 0.0))
            if count and time.time() - last > self.forget_after_s:
                self._failures.pop(key, None)
                return 0.0
            return min(self.base_s * 2 ** (count - 1), self.max_s) if count else 0.0

    def failed(self, key: str) -> None:
        with self._lock:
            count, _ = self._failures.get(key, (0, 0.0))
            self._failures[key] = (count + 1, time.time())
            if len(self._failures) > 10_000:   # bounded memory under a flood of names
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class LoginCheck:
    """`LoginCheck(pairs).check` is Gradio's `auth` callable (awaited by its /login route)."""

    def __init__(self, pairs: Iterable[tuple[str, str]], delays: FailureDelays | None = None):
        self.users = dict(pairs)
        self.delays = delays or FailureDelays()

    async def check(self, username: str, password: str) -> bool:
        wait = self.delays.delay("user:" + username)
        if wait:
            await asyncio.sleep(wait)
        stored = self.users.get(username)
        ok = stored is not None and await asyncio.to_thread(verify_password, password, stored)
        if ok:
            self.delays.succeeded("user:" + username)
        else:
            self.delays.failed("user:" + username)
            log.warning("failed login for user %r", username[:40])
        return ok


class LoginThrottle:
    """ASGI middleware: POST .../login from an address with recent failures waits first."""

    def __init__(self, app, delays: FailureDelays):
        self.app, self.delays = app, delays

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope.get("path", "").rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        key = "address:" + str((scope.get("client") or ("?",))[0])
        wait = self.delays.delay(key)
        if wait:
            await asyncio.sleep(wait)

        async def watch(message):
            if message["type"] == "http.response.start":
                (self.delays.failed if message["status"] >= 400 else self.delays.succeeded)(key)
            await send(message)

        return await self.app(scope, receive, watch)
