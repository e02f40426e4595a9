"""Who is asking: an authenticated user, or an anonymous browser / API session.

* **Owner**: an authenticated user (`user:<name>`) or, without login, a session identified by a
  server-signed owner token (`identity.py`: cookie or the page's own storage).
* Paths and logs use `Owner.hash`/`Owner.key`, never the token itself.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SID_COOKIE = "tl_sid"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Owner:
    kind: str      # "user" | "session"
    name: str      # user name, or the session cookie / session hash

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def hash(self) -> str:
        """Stable, unguessable-from-outside id used in paths (never the raw cookie)."""
        return owner_hash(self.id)

    @property
    def key(self) -> str:
        """Folder name under the runs directory."""
        if self.kind == "user":
            slug = _SAFE.sub("_", self.name)[:40].strip("._") or "user"
            return f"u-{slug}-{self.hash[:10]}"
        return f"s-{self.hash[:24]}"

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def log_name(self) -> str:
        """For logs: a user's name, or a short hash for a session (never the cookie itself)."""
        return self.id if self.is_user else f"session:{self.hash[:10]}"


def owner_hash(owner_id: str) -> str:
    return hashlib.sha256(("tl-owner\0" + owner_id).encode("utf-8")).hexdigest()[:32]
