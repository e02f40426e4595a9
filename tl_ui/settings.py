"""Server settings: command-line flags over environment variables over defaults.

Every setting has a flag and a `TL_*` environment variable (the Hugging Face Space and a systemd
unit set variables; a person at a terminal types flags). Passwords never come from a flag (it
would show in `ps`): only from `TL_AUTH` or a file named by `TL_AUTH_FILE` / `--auth-file`.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

MB = 1024 * 1024
# SetFit's contrastive pairs per run, at most (SetFit would draw 40 per training text): keeps a CPU
# run of MiniLM-L6 to minutes (tl_ui/engine/planning.py estimates it; RunConfig.extra
# "setfit_max_pairs" changes it for one run).
SETFIT_MAX_PAIRS = 480


class SettingsError(ValueError):
    """A setting the person starting the server must fix; the message says which and how."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    root_path: str = ""                      # public sub-path behind a reverse proxy, e.g. "/lab"
    runs_dir: Path = Path("runs")
    max_upload_mb: float = 200.0             # one uploaded file (zip / CSV / TSV / Excel)
    max_images: int = 20_000                 # images in one uploaded dataset
    max_rows: int = 100_000                  # rows in one uploaded table
    max_jobs: int = 1                        # training jobs running at once (1 per device)
    max_queued_per_user: int = 3             # jobs one user/session may have waiting or running
    auth: tuple[tuple[str, str], ...] = field(default=(), repr=False)   # (user, password) pairs
    offline: bool = False                    # only the offline model shelf; no hub look-ups
    session_ttl_hours: float = 24.0          # anonymous session folders older than this are removed
    cleanup_minutes: float = 30.0            # how often the clean-up runs
    embedding_cache_mb: float = 256.0        # each owner's embeddings kept across runs (0: none)
    fast_path: bool = True                   # channels-last / native bf16 / length buckets (tl_ui/engine/fast_path.py)
    advisor_max_examples: int = 1000         # the model advisor ranks models on at most this many examples
    # -- where runs train -------------------------------------------------------------------
    executor: str = "process"                # "process": one worker process per run; "ray": one Ray task per run
    spare_worker: bool = True                # process executor: a warm worker serves runs one after another
    ray_address: str = ""                    # with executor "ray": "auto", a cluster address, or "" (start a local Ray)
    job_memory_gb: float = 8.0               # a worker's address-space cap; 0 = no cap
    job_max_minutes: float = 120.0           # a run's wall-clock cap
    max_queued: int = 50                     # jobs waiting or running, everyone together
    max_queued_per_address: int = 6          # jobs waiting or running per client address without login
    # -- limits on what a user can ask for (page, API and CLI alike; tl_ui/limits.py) ---------
    max_epochs: int = 200
    max_batch_size: int = 128
    max_image_size: int = 512
    max_lora_rank: int = 64
    max_text_length: int = 512
    max_classes: int = 200
    max_dataset_megapixels: float = 2000.0   # decoded pixels of all images of one dataset, in millions
    max_model_params_m: float = 400.0        # a Hub model's parameters, in millions (checked before download)

    # -- derived ----------------------------------------------------------------------------
    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth)

    def limits(self):
        """The data module's Limits for one upload (imported lazily: data pulls in numpy/PIL)."""
        from tl_ui.data import Limits

        return Limits(
            max_upload_bytes=self.max_upload_bytes,
            max_files=self.max_images,
            max_rows=self.max_rows,
            max_classes=self.max_classes,
            max_dataset_pixels=int(self.max_dataset_megapixels * 1_000_000),
        )

    def run_limits(self):
        """What one run may ask for (tl_ui/limits.py), the same for page, API and CLI."""
        from tl_ui.limits import RunLimits

        return RunLimits(max_epochs=self.max_epochs, max_batch_size=self.max_batch_size,
                         max_image_size=self.max_image_size, max_lora_rank=self.max_lora_rank,
                         max_text_length=self.max_text_length, max_model_params_m=self.max_model_params_m)

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
        for name in ("advisor_max_examples",
                     "max_images", "max_rows", "max_jobs", "max_queued_per_user", "max_queued",
                     "max_queued_per_address", "max_epochs", "max_batch_size", "max_lora_rank", "max_classes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.replace('_', ' ').capitalize()} must be at least 1.")
        if self.executor not in ("process", "ray"):
            raise SettingsError(f"Executor must be 'process' or 'ray' (got '{self.executor}').")
        if self.max_image_size < 32 or self.max_text_length < 8:
            raise SettingsError("Max image size must be at least 32 pixels and max text length at least 8 tokens.")
        if self.job_memory_gb < 0 or self.job_max_minutes <= 0:
            raise SettingsError("Job memory must be 0 (no cap) or more, and job minutes more than 0.")
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
        from tl_ui.auth import LoginCheck

        # a bound `async def` method: Gradio awaits the callable only when
        # inspect.iscoroutinefunction() says so (an object with an async __call__ would be
        # called without await, and its coroutine would count as a successful login)
        return LoginCheck(self.auth).check

    @property
    def plain_password_users(self) -> list[str]:
        from tl_ui.auth import is_hashed

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
                f"  auth            {users}",
                f"  offline         {'yes' if self.offline else 'no'}",
                f"  clean-up        every {self.cleanup_minutes:g} min, sessions kept {self.session_ttl_hours:g} h",
            ]
        )


# -- parsing helpers ------------------------------------------------------------------------
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false (got '{text}').")


def _parse_number(name: str, text: str, kind=int):
    try:
        return kind(text.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{name} must be {what} (got '{text}').") from None


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


# (setting name, env var, parser kind, flag, help)
_ENV_SPEC: list[tuple[str, str, str, str]] = [
    ("host", "TL_HOST", "str", "Address to listen on (0.0.0.0 for every interface). Default 127.0.0.1."),
    ("port", "TL_PORT", "int", "Port to listen on. Default 7860."),
    ("root_path", "TL_ROOT_PATH", "str", "Public sub-path when served behind a reverse proxy, e.g. /lab."),
    ("runs_dir", "TL_RUNS_DIR", "path", "Folder for runs, uploads and per-user working folders. Default ./runs."),
    ("max_upload_mb", "TL_MAX_UPLOAD_MB", "float", "Largest upload in MB (checked before unpacking). Default 200."),
    ("max_images", "TL_MAX_IMAGES", "int", "Most images in one dataset. Default 20000."),
    ("max_rows", "TL_MAX_ROWS", "int", "Most rows in one table (CSV/TSV/Excel). Default 100000."),
    ("max_jobs", "TL_MAX_JOBS", "int", "Training jobs running at once; others wait in a queue. Default 1."),
    ("max_queued_per_user", "TL_MAX_QUEUED_PER_USER", "int", "Jobs one user may have waiting or running. Default 3."),
    ("offline", "TL_OFFLINE", "bool", "Offline mode: only the packaged model shelf, no hub downloads."),
    ("session_ttl_hours", "TL_SESSION_TTL_HOURS", "float", "Anonymous session folders are removed after this many hours. Default 24."),
    ("cleanup_minutes", "TL_CLEANUP_MINUTES", "float", "Minutes between clean-ups of old sessions and caches. Default 30."),
    ("embedding_cache_mb", "TL_EMBEDDING_CACHE_MB", "float", "Embeddings each user keeps for quicker repeat runs, in MB (0: none). Default 256."),
    ("fast_path", "TL_FAST_PATH", "bool", "Channels-last images, bf16 on CPUs that have it, texts batched by length (false: plain float32). Default true."),
    ("advisor_max_examples", "TL_ADVISOR_MAX_EXAMPLES", "int", "Examples the model advisor embeds per model (a stratified sample of larger datasets). Default 1000."),
    ("executor", "TL_EXECUTOR", "str", "Where runs train: 'process' (a worker process each) or 'ray'. Default process."),
    ("spare_worker", "TL_SPARE_WORKER", "bool", "Warm worker: one worker process serves runs one after another, keeping up to 2 pretrained models loaded (about 1.2 GB while it waits); a run that fails, crashes or is killed ends it and the next run gets a fresh one. Off: a new process per run. Default true."),
    ("ray_address", "TL_RAY_ADDRESS", "str", "With --executor ray: 'auto', a cluster address, or empty for a local Ray."),
    ("job_memory_gb", "TL_JOB_MEMORY_GB", "float", "Memory cap of one training worker in GB (0: none). Default 8."),
    ("job_max_minutes", "TL_JOB_MAX_MINUTES", "float", "Wall-clock cap of one run in minutes. Default 120."),
    ("max_queued", "TL_MAX_QUEUED", "int", "Jobs waiting or running, all users together. Default 50."),
    ("max_queued_per_address", "TL_MAX_QUEUED_PER_ADDRESS", "int", "Jobs waiting or running per client address without login. Default 6."),
    ("max_epochs", "TL_MAX_EPOCHS", "int", "Most epochs one run may ask for. Default 200."),
    ("max_batch_size", "TL_MAX_BATCH_SIZE", "int", "Largest batch size. Default 128."),
    ("max_image_size", "TL_MAX_IMAGE_SIZE", "int", "Largest image size in pixels. Default 512."),
    ("max_lora_rank", "TL_MAX_LORA_RANK", "int", "Largest LoRA rank. Default 64."),
    ("max_text_length", "TL_MAX_TEXT_LENGTH", "int", "Most tokens per text. Default 512."),
    ("max_classes", "TL_MAX_CLASSES", "int", "Most classes in one dataset. Default 200."),
    ("max_dataset_megapixels", "TL_MAX_DATASET_MEGAPIXELS", "float", "Decoded pixels of one dataset's images, in millions. Default 2000."),
    ("max_model_params_m", "TL_MAX_MODEL_PARAMS", "float", "Largest Hub model, in millions of parameters (checked before download). Default 400."),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Transfer Lab web app. Every flag also has a TL_* environment variable; flags win.",
    )
    for name, env, kind, help_text in _ENV_SPEC:
        flag = "--" + name.replace("_", "-")
        if kind == "bool":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{help_text} [{env}]")
        else:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(),
                                help=f"{help_text} [{env}]")
    parser.add_argument(
        "--auth-file", dest="auth_file", default=None, metavar="PATH",
        help="File with one 'user:password' per line; turns on login. [TL_AUTH_FILE; or TL_AUTH='u:p,u2:p2']",
    )
    return parser


def _convert(name: str, kind: str, raw, label: str):
    if kind == "int":
        return _parse_number(label, str(raw), int)
    if kind == "float":
        return _parse_number(label, str(raw), float)
    if kind == "bool":
        return raw if isinstance(raw, bool) else _parse_bool(label, str(raw))
    if kind == "path":
        return Path(str(raw)).expanduser()
    return str(raw)


def load_settings(argv: Optional[Sequence[str]] = None, environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Settings from flags (`argv`), then `TL_*` variables (`environ`), then defaults.

    `GRADIO_SERVER_NAME` / `GRADIO_SERVER_PORT` (set by Hugging Face Spaces) are honoured when the
    TL_ variables are absent.
    """
    env = dict(os.environ if environ is None else environ)
    args = build_parser().parse_args(list(argv) if argv is not None else [])
    values: dict = {}
    fallbacks = {"host": "GRADIO_SERVER_NAME", "port": "GRADIO_SERVER_PORT"}
    for name, env_name, kind, _ in _ENV_SPEC:
        flag_value = getattr(args, name)
        if flag_value is not None:
            values[name] = _convert(name, kind, flag_value, "--" + name.replace("_", "-"))
        elif env.get(env_name, "").strip() != "":
            values[name] = _convert(name, kind, env[env_name], env_name)
        elif name in fallbacks and env.get(fallbacks[name], "").strip():
            values[name] = _convert(name, kind, env[fallbacks[name]], fallbacks[name])

    auth: tuple[tuple[str, str], ...] = ()
    auth_file = args.auth_file or env.get("TL_AUTH_FILE", "").strip() or None
    if auth_file:
        auth = read_auth_file(auth_file)
    if env.get("TL_AUTH", "").strip():
        extra = parse_auth_pairs(env["TL_AUTH"], "TL_AUTH")
        known = {u for u, _ in auth}
        auth = auth + tuple(p for p in extra if p[0] not in known)
    values["auth"] = auth
    return Settings(**values).validate()
