"""Owner identity that never depends on a cookie and never trusts a client-chosen value;
signed, expiring links to private files."""
from __future__ import annotations

import time

from tl_ui.service.identity import Identity, load_secret


class Req:
    def __init__(self, cookies=None, session_hash=None, username=None):
        self.cookies, self.session_hash, self.username = cookies or {}, session_hash, username


def test_tokens_are_signed_and_made_up_ones_are_nobody(tmp_path):
    ident = Identity(load_secret(tmp_path))
    token = ident.new_token()
    mine = ident.owner_of_token(token)
    assert mine is not None and ident.owner(Req({"tl_sid": token})) == mine
    nonce = token.split(".")[0]
    for forged in (nonce + ".AAAAAAAAAAAAAAAAAAAAAA", "guessed-session-id-0000", nonce, ""):
        assert ident.owner_of_token(forged) is None
        stranger = ident.owner(Req({"tl_sid": forged}))
        assert stranger != mine and stranger.name.startswith("anon-")
    # a client-chosen session hash alone is never an owner (no fallback): each call is a new nobody
    assert ident.owner(Req(session_hash="abc")) != ident.owner(Req(session_hash="abc"))
    # the secret persists: a restarted server still knows the token
    assert Identity(load_secret(tmp_path)).owner_of_token(token) == mine


def test_page_binding_prefers_its_own_storage_and_is_never_repointed(tmp_path):
    ident = Identity(load_secret(tmp_path))
    stored = ident.new_token()
    owner, kept = ident.bind(Req(session_hash="page-1"), stored)          # cookies blocked: storage only
    assert kept == stored and owner == ident.owner_of_token(stored)
    assert ident.owner(Req(session_hash="page-1")) == owner                # later events of that page
    other, _ = ident.bind(Req(session_hash="page-1"), ident.new_token())   # a second bind cannot take it over
    assert other == owner
    fresh, new_token = ident.bind(Req(session_hash="page-2"), "made-up")   # a made-up value: a new owner
    assert fresh != owner and ident.owner_of_token(new_token) == fresh
    user, _ = ident.bind(Req(session_hash="page-3", username="alice"), stored)
    assert user.id == "user:alice"


def test_capability_folders_expire_and_bind_the_owner(tmp_path):
    ident = Identity(load_secret(tmp_path))
    folder = ident.capability_folder("owner-a", ttl_s=60)
    assert ident.capability_valid("owner-a", folder)
    assert not ident.capability_valid("owner-b", folder)                   # another owner's path
    assert not ident.capability_valid("owner-a", folder[:-1] + ("x" if folder[-1] != "x" else "y"))
    assert not ident.capability_valid("owner-a", folder, now=time.time() + 120)   # expired
    assert not ident.capability_valid("owner-a", "cache")
    assert not Identity(b"another server").capability_valid("owner-a", folder)
