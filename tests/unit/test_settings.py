from pathlib import Path

import pytest

from tl_ui.core.settings import Settings, SettingsError, load_settings, parse_auth_pairs


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


# -- one configuration system: the README's Settings table, the fields, the flags, the variables -------
import re  # noqa: E402

from tl_ui.data.limits import Limits  # noqa: E402
from tl_ui.core.limits import RunLimits  # noqa: E402
from tl_ui.core.settings import build_parser, env_names, flag_name  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"
# Variables of the table that are no Settings field, and who reads them.
NOT_SETTINGS = {"TL_SECRET_KEY": "tl_ui/service/identity.py (a secret: never a flag, never logged)",
                "TL_AUTH_FILE": "load_settings: the file becomes `auth`"}


def readme_settings_rows() -> list[tuple[list[str], list[str], str]]:
    """(flags, variables, default) of each row of the README's Settings table."""
    table = README.read_text(encoding="utf-8").split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[1].startswith("`"):
            continue
        flags = re.findall(r"`(--[a-z-]+)", cells[0])
        variables = re.findall(r"`?(TL_[A-Z_]+|GRADIO_[A-Z_]+)", cells[1])
        if "…" in cells[1]:   # "`TL_MAX_EPOCHS` …": each flag of the row has its TL_ variable
            variables += ["TL_" + flag[2:].upper().replace("-", "_") for flag in flags]
        rows.append((flags, variables, cells[2]))
    return rows


def test_the_readme_table_lists_every_setting_with_its_flag_variable_and_default():
    rows = readme_settings_rows()
    assert len(rows) >= 25
    parser_flags = {option for action in build_parser()._actions for option in action.option_strings}
    listed_flags, listed_variables, checked = set(), set(), 0
    for flags, variables, default in rows:
        assert set(flags) <= parser_flags, flags
        listed_flags |= set(flags)
        listed_variables |= set(variables)
        defaults = [d.strip(" `") for d in default.split(",")]
        named = [f for f in flags if not f.startswith("--no-") and f != "--auth-file"]
        if len(defaults) != len(named):
            continue
        for flag, shown in zip(named, defaults):
            checked += 1
            value = Settings.model_fields[flag[2:].replace("-", "_")].default
            if isinstance(value, bool):
                assert shown == ("on" if value else "off"), flag
            elif isinstance(value, (int, float)):
                assert float(shown) == value, flag
            elif shown not in ("–", "-"):
                assert Path(shown) == Path(value) if isinstance(value, Path) else shown == value, flag
    assert checked >= 25
    names = [n for n in Settings.model_fields if n != "auth"]
    assert {flag_name(n) for n in names} <= listed_flags
    every_variable = {v for n in Settings.model_fields for v in env_names(n)}
    for variable in listed_variables - set(NOT_SETTINGS):
        assert variable in every_variable, variable
    assert every_variable <= listed_variables


def test_each_variable_of_the_table_is_read():
    for name in Settings.model_fields:
        if name == "auth":
            continue
        field = Settings.model_fields[name]
        value = {bool: "0" if field.default else "1", int: "77", float: "77.5"}.get(field.annotation, "/x")
        value = "ray" if name == "executor" else "12" if name == "worker_nice" else value   # nice: 0-19
        for variable in env_names(name):
            setting = getattr(load_settings([], {variable: value}), name)
            assert setting != field.default, (variable, setting)


def test_each_limits_default_is_written_once():
    """The server's defaults are the data's and the run's own limits."""
    assert Settings().limits() == Limits()
    assert Settings().run_limits() == RunLimits()


def test_help_names_each_flags_variable_and_default(capsys):
    with pytest.raises(SystemExit):
        load_settings(["--help"], {})
    text = " ".join(capsys.readouterr().out.split())
    assert "--max-model-params-m" in text and "[TL_MAX_MODEL_PARAMS]" in text
    assert "[TL_HOST, GRADIO_SERVER_NAME] (default: 127.0.0.1)" in text
    assert "--offline, --no-offline" in text and "--auth-file" in text and "--auth " not in text
