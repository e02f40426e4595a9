"""Server settings: command-line flags over `TL_*` environment variables over defaults (pydantic-settings).

Every setting is one field of `Settings` with its one default and its description; the flags
(`python app.py --help`) and the variables are made from those fields: `--max-jobs` and
`TL_MAX_JOBS` for `max_jobs` (a field's `env` lists other names: `GRADIO_SERVER_NAME` /
`GRADIO_SERVER_PORT`, set by Hugging Face Spaces, stand in for a missing `TL_HOST` / `TL_PORT`).
The limits' defaults are the data's (`tl_ui.data.limits.Limits`) and the run's
(`tl_ui.core.limits.RunLimits`). Passwords never come from a flag (it would show in `ps`): only from
`TL_AUTH` or a file named by `TL_AUTH_FILE` / `--auth-file`.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic_settings import BaseSettings, CliSettingsSource, EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from tl_ui.data.limits import MB, Limits
from tl_ui.core.limits import RunLimits

_DATA, _RUN = Limits(), RunLimits()   # the one place of each limit's default


class SettingsError(ValueError):
    """A setting the person starting the server must fix; the message says which and how."""


def _setting(default: Any, description: str, *, env: Optional[Sequence[str]] = None, **kwargs) -> Any:
    """A Settings field: its one default, its help text, and its variables when not `TL_<NAME>`."""
    return Field(default, description=description, json_schema_extra={"env": list(env)} if env else None, **kwargs)


class Settings(BaseModel):
    """The server's settings (frozen). `Settings(...)` takes values as given, without reading the
    environment; `load_settings` adds flags and variables."""
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = _setting("127.0.0.1", "Address to listen on (0.0.0.0 for every interface).",
                         env=("TL_HOST", "GRADIO_SERVER_NAME"))
    port: int = _setting(7860, "Port to listen on.", env=("TL_PORT", "GRADIO_SERVER_PORT"))
    root_path: str = _setting("", "Public sub-path when served behind a reverse proxy, e.g. /lab.")
    runs_dir: Path = _setting(Path("runs"), "Folder for runs, uploads and per-user working folders.")
    max_upload_mb: float = _setting(_DATA.max_upload_bytes / MB, "Largest upload in MB (checked before unpacking).")
    max_images: int = _setting(_DATA.max_files, "Most images in one dataset.")
    max_rows: int = _setting(_DATA.max_rows, "Most rows in one table (CSV/TSV/Excel).")
    max_jobs: int = _setting(1, "Training jobs running at once (1 per device); others wait in a queue.")
    max_queued_per_user: int = _setting(3, "Jobs one user may have waiting or running.")
    auth: tuple[tuple[str, str], ...] = _setting(
        (), "(user, password) pairs; from TL_AUTH and the auth file only, never a flag.", repr=False,
        env=("TL_AUTH",))
    offline: bool = _setting(False, "Offline mode: only the packaged model shelf, no hub downloads.")
    session_ttl_hours: float = _setting(24.0, "Anonymous session folders, old uploads and cached copies are "
                                              "removed after this many hours.")
    cleanup_minutes: float = _setting(30.0, "Minutes between clean-ups of old sessions and caches.")
    embedding_cache_mb: float = _setting(256.0, "Embeddings each user keeps for quicker repeat runs, in MB "
                                                "(0: none).")
    fast_path: bool = _setting(True, "Channels-last images, bf16 on CPUs that have it, texts batched by length "
                                     "(off: plain float32; tl_ui/engine/models/fast_path.py).")
    advisor_max_examples: int = _setting(1000, "Examples the model advisor embeds per model (a stratified sample "
                                               "of larger datasets).")
    # -- where runs train -------------------------------------------------------------------
    executor: str = _setting("process", "Where runs train: 'process' (a worker process each) or 'ray'.")
    spare_worker: bool = _setting(True, "Warm worker: one worker process serves runs one after another, keeping "
                                        "up to 2 pretrained models loaded (about 1.2 GB while it waits); a run that "
                                        "fails, crashes or is killed ends it and the next run gets a fresh one. "
                                        "Off: a new process per run.")
    worker_nice: int = _setting(5, "How much lower than the page's server a training worker runs (Linux nice, "
                                   "0-19): a run never slows the page; 0 on a machine that only trains.")
    ray_address: str = _setting("", "With --executor ray: 'auto', a cluster address, or empty for a local Ray.")
    job_memory_gb: float = _setting(8.0, "Memory cap of one training worker in GB (0: none).")
    job_max_minutes: float = _setting(120.0, "Wall-clock cap of one run in minutes.")
    max_queued: int = _setting(50, "Jobs waiting or running, all users together.")
    # -- where models answer (try-it, /predict, explanations, mistake maps; tl_ui/jobs/inference) ---
    inference_workers: int = _setting(1, "Inference worker processes that keep models loaded for try-it, /predict, "
                                         "explanations and mistake maps (1 on a 2-core machine).")
    inference_memory_gb: float = _setting(8.0, "Memory cap of one inference worker in GB, beyond its libraries "
                                               "(0: none); a model too big for it is refused before it is loaded.")
    inference_models_mb: float = _setting(2048.0, "Models one inference worker keeps loaded, in MB of parameters "
                                                  "and buffers (least recently used go first).")
    inference_max_seconds: float = _setting(60.0, "Wall-clock cap of one answer (try-it, explanation, mistake "
                                                  "maps) in seconds.")
    inference_max_per_user: int = _setting(3, "Answers one user may have being computed at once.")
    inference_max_in_flight: int = _setting(8, "Answers being computed at once, all users together; more wait "
                                               "briefly, then are told the server is busy.")
    max_queued_per_address: int = _setting(6, "Jobs waiting or running per client address without login.")
    # -- limits on what a user can ask for (page, API and CLI alike; tl_ui/core/limits.py) ---------
    max_epochs: int = _setting(_RUN.max_epochs, "Most epochs one run may ask for.")
    max_batch_size: int = _setting(_RUN.max_batch_size, "Largest batch size.")
    max_image_size: int = _setting(_RUN.max_image_size, "Largest image size in pixels.")
    max_lora_rank: int = _setting(_RUN.max_lora_rank, "Largest LoRA rank.")
    max_text_length: int = _setting(_RUN.max_text_length, "Most tokens per text.")
    max_budget_minutes: float = _setting(_RUN.max_budget_minutes, "Longest time budget of an 'auto' run's search, "
                                         "in minutes.")
    max_classes: int = _setting(_DATA.max_classes, "Most classes in one dataset.")
    max_dataset_megapixels: float = _setting(_DATA.max_dataset_pixels / 1e6, "Decoded pixels of one dataset's "
                                                                               "images, in millions.")
    max_model_params_m: float = _setting(_RUN.max_model_params_m, "Largest Hub model, in millions of parameters "
                                         "(checked before download).", env=("TL_MAX_MODEL_PARAMS",))

    @field_validator("runs_dir")
    @classmethod
    def _home(cls, value: Path) -> Path:
        return Path(value).expanduser()

    # -- derived ----------------------------------------------------------------------------
    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth)

    def limits(self) -> Limits:
        """The data module's Limits for one upload."""
        return Limits(
            max_upload_bytes=self.max_upload_bytes,
            max_files=self.max_images,
            max_rows=self.max_rows,
            max_classes=self.max_classes,
            max_dataset_pixels=int(self.max_dataset_megapixels * 1_000_000),
        )

    def run_limits(self) -> RunLimits:
        """What one run may ask for (tl_ui/core/limits.py), the same for page, API and CLI."""
        return RunLimits(max_epochs=self.max_epochs, max_batch_size=self.max_batch_size,
                         max_image_size=self.max_image_size, max_lora_rank=self.max_lora_rank,
                         max_text_length=self.max_text_length, max_model_params_m=self.max_model_params_m,
                         max_budget_minutes=self.max_budget_minutes)

    def validate(self) -> "Settings":
        if not 0 < self.port < 65536:
            raise SettingsError(f"Port must be between 1 and 65535 (got {self.port}).")
        if self.root_path and not (
            self.root_path.startswith("/") or self.root_path.startswith(("http://", "https://"))
        ):
            raise SettingsError(
                f"Root path must start with '/' (or be a full http(s) URL), got '{self.root_path}'."
            )
        if self.max_upload_mb <= 0:
            raise SettingsError("Maximum upload size must be more than 0 MB.")
        for name in ("advisor_max_examples", "inference_workers", "inference_max_per_user", "inference_max_in_flight",
                     "max_images", "max_rows", "max_jobs", "max_queued_per_user", "max_queued",
                     "max_queued_per_address", "max_epochs", "max_batch_size", "max_lora_rank", "max_classes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.replace('_', ' ').capitalize()} must be at least 1.")
        if self.executor not in ("process", "ray"):
            raise SettingsError(f"Executor must be 'process' or 'ray' (got '{self.executor}').")
        if self.max_image_size < 32 or self.max_text_length < 8:
            raise SettingsError("Max image size must be at least 32 pixels and max text length at least 8 tokens.")
        if not 0 <= self.worker_nice <= 19:
            raise SettingsError(f"Worker nice must be between 0 and 19 (got {self.worker_nice}).")
        if self.job_memory_gb < 0 or self.job_max_minutes <= 0:
            raise SettingsError("Job memory must be 0 (no cap) or more, and job minutes more than 0.")
        if self.inference_memory_gb < 0 or self.inference_models_mb < 0 or self.inference_max_seconds <= 0:
            raise SettingsError("Inference memory and kept models must be 0 or more, and inference seconds more "
                                "than 0.")
        if self.embedding_cache_mb < 0:
            raise SettingsError("The embedding cache size must be 0 (none) or more MB.")
        if self.session_ttl_hours <= 0 or self.cleanup_minutes <= 0:
            raise SettingsError("Session lifetime and clean-up interval must be more than 0.")
        return self

    def limits_record(self) -> dict:
        """The data limits in force, as run.json records them (a replay reads data with these)."""
        import dataclasses

        return dataclasses.asdict(self.limits())

    def login_check(self):
        """Gradio's `auth` callable (hashed or plain passwords, failures slowed), or None."""
        if not self.auth:
            return None
        from tl_ui.core.auth import LoginCheck

        # a bound `async def` method: Gradio awaits the callable only when
        # inspect.iscoroutinefunction() says so (an object with an async __call__ would be
        # called without await, and its coroutine would count as a successful login)
        return LoginCheck(self.auth).check

    @property
    def plain_password_users(self) -> list[str]:
        from tl_ui.core.auth import is_hashed

        return [u for u, p in self.auth if not is_hashed(p)]

    def describe(self) -> str:
        """One line per setting, for the server log (passwords never printed)."""
        users = ", ".join(u for u, _ in self.auth) if self.auth else "off"
        if self.plain_password_users:
            users += (f" (WARNING: plain-text passwords for {', '.join(self.plain_password_users)}; "
                      "store hashes made with `python -m tl_ui hash-password`)")
        return "\n".join(
            [
                f"  host/port       {self.host}:{self.port}",
                f"  root path       {self.root_path or '/'}",
                f"  runs dir        {Path(self.runs_dir).resolve()}",
                f"  max upload      {self.max_upload_mb:g} MB",
                f"  max images/rows {self.max_images} / {self.max_rows}",
                f"  max jobs        {self.max_jobs} at once, {self.max_queued_per_user} per user, "
                f"{self.max_queued} queued in all",
                f"  executor        {self.executor}{' at ' + self.ray_address if self.ray_address else ''}, "
                f"{self.job_memory_gb:g} GB and {self.job_max_minutes:g} min per job",
                f"  inference       {self.inference_workers} worker(s), {self.inference_memory_gb:g} GB cap, "
                f"{self.inference_models_mb:g} MB of kept models, {self.inference_max_seconds:g} s per answer, "
                f"{self.inference_max_per_user} per user and {self.inference_max_in_flight} at once",
                f"  auth            {users}",
                f"  offline         {'yes' if self.offline else 'no'}",
                f"  clean-up        every {self.cleanup_minutes:g} min, sessions kept {self.session_ttl_hours:g} h",
            ]
        )


# -- flags and variables ----------------------------------------------------------------------
AUTH_FILE_HELP = "File with one 'user:password' per line; turns on login."
NO_FLAG = frozenset({"auth"})      # a password never comes from a flag


def env_names(name: str) -> list[str]:
    """The environment variables of a setting, the first set one counting."""
    field = Settings.model_fields[name]
    return list((field.json_schema_extra or {}).get("env") or ["TL_" + name.upper()])


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


@lru_cache(maxsize=None)
def _sources_model(kind: str) -> type[BaseSettings]:
    """What pydantic-settings reads: for "env", each setting under its variables (and TL_AUTH_FILE),
    as text; for "cli", each setting as a flag (help: description, variable, default) and --auth-file."""
    fields: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        if kind == "cli" and name in NO_FLAG:
            continue
        if kind == "env":
            fields[name] = (Optional[str], Field(None, validation_alias=AliasChoices(*env_names(name))))
        else:
            fields[name] = (field.annotation, Field(field.default, description=(
                f"{field.description} [{', '.join(env_names(name))}]")))
    if kind == "env":
        fields["auth_file"] = (Optional[str], Field(None, validation_alias="TL_AUTH_FILE"))
    else:
        fields["auth_file"] = (Optional[Path], Field(None, description=f"{AUTH_FILE_HELP} [TL_AUTH_FILE; or "
                                                                       "TL_AUTH='u:p,u2:p2']"))
    model = create_model(f"_{kind.capitalize()}Settings", __base__=BaseSettings, **fields)
    model.__doc__ = ("Transfer Lab web app. Every flag also has a TL_* environment variable (in brackets); "
                     "flags win over variables, variables over defaults.")
    return model


class _Variables(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (tests pass their own)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = {k: v for k, v in environ.items() if isinstance(v, str) and v.strip()}
        super().__init__(settings_cls, case_sensitive=True, env_ignore_empty=True)

    def _load_env_vars(self):
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _cli_source(argv: Optional[Sequence[str]] = None) -> CliSettingsSource:
    """pydantic-settings' flags, made from the fields; with `argv`, parsed (`--help` and argparse's
    errors exit, as any command's do)."""
    return CliSettingsSource(_sources_model("cli"), cli_parse_args=None if argv is None else list(argv),
                             cli_prog_name="app.py", cli_kebab_case=True, cli_implicit_flags=True,
                             cli_hide_none_type=True)


def _flags(argv: Sequence[str]) -> dict[str, Any]:
    """The settings the flags given set."""
    return {k: v for k, v in _cli_source(argv)().items() if v is not None}


def _variables(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the settings the variables give, the variable each came from)."""
    model = _sources_model("env")
    found = _Variables(model, environ)()
    by_alias = {info.validation_alias.choices[0] if isinstance(info.validation_alias, AliasChoices)
                else info.validation_alias: name for name, info in model.model_fields.items()}
    values = {by_alias.get(key, key): value for key, value in found.items()}
    names = {"auth_file": "TL_AUTH_FILE"}
    for name in values:
        if name in Settings.model_fields:
            names[name] = next(v for v in env_names(name) if str(environ.get(v, "")).strip())
    return values, names


def build_parser():
    """The flags' argparse parser, as `load_settings` parses them (`python app.py --help`)."""
    return _cli_source().root_parser


_WHAT = {"int_parsing": "a whole number", "int_from_float": "a whole number", "int_type": "a whole number",
         "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
         "bool_type": "true or false"}


def _explain(exc: ValidationError, sources: Mapping[str, str]) -> SettingsError:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "?"
    where = sources.get(name, name)
    what = _WHAT.get(error["type"])
    if what:
        return SettingsError(f"{where} must be {what} (got '{error.get('input')}').")
    return SettingsError(f"{where}: {error['msg']} (got '{error.get('input')}').")


def load_settings(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Settings from flags (`argv`), then `TL_*` variables (`environ`, default os.environ), then defaults."""
    environ = os.environ if environ is None else environ
    flags = _flags(argv or [])
    variables, variable_names = _variables(environ)
    given = {**variables, **flags}                     # flags win over variables over defaults
    sources = {**variable_names, **{name: flag_name(name) for name in flags}}
    auth_file = given.pop("auth_file", None)
    auth_env = given.pop("auth", None)
    auth: tuple[tuple[str, str], ...] = read_auth_file(auth_file) if auth_file else ()
    if auth_env:
        extra = parse_auth_pairs(auth_env, "TL_AUTH")
        known = {u for u, _ in auth}
        auth = auth + tuple(p for p in extra if p[0] not in known)
    try:
        settings = Settings(**given, auth=auth)
    except ValidationError as exc:
        raise _explain(exc, sources) from None
    return settings.validate()


def parse_auth_pairs(text: str, source: str, commas: bool = True) -> tuple[tuple[str, str], ...]:
    """'alice:pw1, bob:pw2' (commas=True, for TL_AUTH) or one 'user:password' per line (files;
    passwords may then contain commas). Blank lines and # comments are skipped."""
    pairs: list[tuple[str, str]] = []
    lines = text.splitlines()
    chunks = [c for line in lines for c in (line.split(",") if commas else [line])]
    for number, chunk in enumerate(chunks, 1):
        chunk = chunk.strip()
        if not chunk or chunk.startswith("#"):
            continue
        user, sep, password = chunk.partition(":")
        if not sep or not user.strip() or not password:
            raise SettingsError(
                f"{source}: entry {number} is not 'user:password' (a user name, a colon, a password)."
            )
        pairs.append((user.strip(), password))
    users = [u for u, _ in pairs]
    if len(set(users)) != len(users):
        raise SettingsError(f"{source}: a user name appears twice.")
    return tuple(pairs)


def read_auth_file(path: str | Path) -> tuple[tuple[str, str], ...]:
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"Cannot read the auth file {p}: {exc.strerror or exc}.") from None
    pairs = parse_auth_pairs(text, f"auth file {p}", commas=False)
    if not pairs:
        raise SettingsError(f"The auth file {p} has no 'user:password' lines.")
    return pairs
