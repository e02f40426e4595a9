from pathlib import Path

import pytest

from tl_ui.settings import Settings, SettingsError, load_settings, parse_auth_pairs


def test_defaults_without_flags_or_env():
    s = load_settings([], {})
    assert s == Settings()
    assert (s.host, s.port, s.root_path) == ("127.0.0.1", 7860, "")
    assert s.max_jobs == 1 and not s.auth_enabled and not s.offline
    assert s.max_upload_bytes == 200 * 1024 * 1024


def test_environment_variables_are_read():
    env = {
        "TL_HOST": "0.0.0.0", "TL_PORT": "8080", "TL_ROOT_PATH": "/lab", "TL_RUNS_DIR": "/srv/tl/runs",
        "TL_MAX_UPLOAD_MB": "50", "TL_MAX_IMAGES": "1000", "TL_MAX_ROWS": "5000", "TL_MAX_JOBS": "2",
        "TL_OFFLINE": "yes", "TL_AUTH": "alice:secret1, bob:secret2",
    }
    s = load_settings([], env)
    assert (s.host, s.port, s.root_path, s.runs_dir) == ("0.0.0.0", 8080, "/lab", Path("/srv/tl/runs"))
    assert (s.max_upload_mb, s.max_images, s.max_rows, s.max_jobs) == (50, 1000, 5000, 2)
    assert s.offline is True
    assert s.auth == (("alice", "secret1"), ("bob", "secret2"))


def test_flags_override_environment():
    env = {"TL_PORT": "8080", "TL_MAX_JOBS": "3", "TL_OFFLINE": "1"}
    s = load_settings(["--port", "9000", "--max-jobs", "1", "--no-offline"], env)
    assert (s.port, s.max_jobs, s.offline) == (9000, 1, False)


def test_space_variables_are_a_fallback():
    s = load_settings([], {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"})
    assert (s.host, s.port) == ("0.0.0.0", 7861)
    s = load_settings([], {"GRADIO_SERVER_PORT": "7861", "TL_PORT": "7000"})
    assert s.port == 7000


def test_auth_file(tmp_path):
    f = tmp_path / "users.txt"
    f.write_text("# lab accounts\nalice:pa:ss\n\nbob:other\n", encoding="utf-8")
    s = load_settings(["--auth-file", str(f)], {})
    assert s.auth == (("alice", "pa:ss"), ("bob", "other"))  # passwords may contain colons
    s = load_settings([], {"TL_AUTH_FILE": str(f)})
    assert s.auth_enabled


def test_passwords_never_printed():
    s = load_settings([], {"TL_AUTH": "alice:topsecret"})
    assert "topsecret" not in repr(s)
    assert "topsecret" not in s.describe()
    assert "alice" in s.describe()


@pytest.mark.parametrize("env, words", [
    ({"TL_PORT": "eighty"}, "TL_PORT must be a whole number"),
    ({"TL_PORT": "70000"}, "Port must be between"),
    ({"TL_MAX_JOBS": "0"}, "at least 1"),
    ({"TL_MAX_UPLOAD_MB": "-1"}, "more than 0"),
    ({"TL_OFFLINE": "maybe"}, "true or false"),
    ({"TL_ROOT_PATH": "lab"}, "must start with '/'"),
    ({"TL_AUTH": "alice"}, "user:password"),
    ({"TL_AUTH": "alice:a,alice:b"}, "appears twice"),
    ({"TL_AUTH_FILE": "/nonexistent/users.txt"}, "Cannot read the auth file"),
])
def test_bad_values_are_explained(env, words):
    with pytest.raises(SettingsError, match=words):
        load_settings([], env)


def test_limits_follow_settings():
    s = Settings(max_upload_mb=1.5, max_images=10, max_rows=20)
    limits = s.limits()
    assert limits.max_upload_bytes == int(1.5 * 1024 * 1024)
    assert (limits.max_files, limits.max_rows) == (10, 20)


def test_parse_auth_pairs_skips_comments():
    assert parse_auth_pairs("# none\n", "x") == ()
