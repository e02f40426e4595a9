"""Secrets: hashed passwords, slowed failed logins, and no session cookie in any log line."""
from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_hashes_verify_and_plain_entries_still_work():
    from tl_ui.core.auth import hash_password, is_hashed, verify_password

    stored = hash_password("correct horse")
    assert is_hashed(stored) and "correct horse" not in stored
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)
    assert hash_password("correct horse") != stored          # salted
    assert verify_password("plain", "plain") and not verify_password("Plain", "plain")


def test_hash_password_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tl_ui", "hash-password", "alice"], input="pw with spaces\n",
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    user, _, stored = done.stdout.strip().partition(":")
    from tl_ui.core.auth import verify_password
    from tl_ui.core.settings import parse_auth_pairs

    assert user == "alice" and verify_password("pw with spaces", stored)
    assert parse_auth_pairs(done.stdout, "file", commas=False) == (("alice", stored),)


def test_the_login_check_is_a_coroutine_function():
    """Gradio awaits `auth` only if inspect.iscoroutinefunction(auth); otherwise any password would pass."""
    import inspect

    from tl_ui.core.settings import Settings

    assert inspect.iscoroutinefunction(Settings(auth=(("a", "b"),)).login_check())


def test_hashed_logins_work_and_wrong_ones_are_slowed(tmp_path):
    import requests

    from tl_ui.core.auth import hash_password
    from tl_ui.app.server import start_in_thread
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    settings = Settings(runs_dir=tmp_path / "runs", auth=(("alice", hash_password("wonderland")), ("bob", "plain")),
                        offline=True)
    assert settings.plain_password_users == ["bob"] and "WARNING" in settings.describe()
    server = start_in_thread(build_app(settings), settings=settings)
    try:
        login = server.url + "login"
        assert requests.post(login, data={"username": "alice", "password": "wonderland"}, timeout=30).ok
        times = []
        for _ in range(3):
            started = time.time()
            assert requests.post(login, data={"username": "alice", "password": "guess"}, timeout=60).status_code == 400
            times.append(time.time() - started)
        assert times[1] >= 0.5 and times[2] >= 1.0 > times[0], times   # each failure slows the next try
        assert requests.post(login, data={"username": "bob", "password": "plain"}, timeout=60).ok
    finally:
        server.stop()


def test_logs_never_carry_the_session_cookie(launched_app, caplog):
    from gradio_client import Client

    caplog.set_level(logging.INFO)
    client = Client(launched_app, verbose=False, analytics_enabled=False)
    client.predict("resnet18", None, "linear_probe", 1, '{"max_examples": 20}', api_name="/train")
    cookie = next((c.value for c in client.cookies.values() if hasattr(c, "value")), None) \
        if isinstance(client.cookies, dict) else None
    cookie = cookie or dict(getattr(client, "cookies", {}) or {}).get("tl_sid")
    assert cookie, "the client should hold the server's session cookie"
    server_side = ("tl_ui", "gradio", "uvicorn", "app")   # not the test client's own HTTP library
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(server_side))
    assert "queued job" in logged and cookie not in logged and "sid-" not in logged
