"""Exceptions in plain words: our own user-facing errors verbatim, anything else one friendly
sentence (the traceback goes to the server log, never to the page, the API or the CLI)."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("tl_ui")

NO_DATA_MESSAGE = ("Load a dataset first: upload one on step 2 · Data, or use a sample there "
                   "(“Use the sample images” or “Use the sample texts”).")


class UserError(ValueError):
    """A plain-words problem a person must act on (shown verbatim)."""


GENERIC_ERROR = ("Something went wrong on the server while doing that. Please try again; if it keeps "
                 "happening, tell the person who runs this Transfer Lab (the details are in its log).")


def user_message(exc: BaseException, what: str = "") -> str:
    module = type(exc).__module__ or ""
    if module.startswith("tl_ui") and isinstance(exc, (ValueError, RuntimeError)):
        return str(exc)
    if isinstance(exc, FileNotFoundError) and module == "builtins" and what:
        return f"{what}: a file is missing on the server ({Path(str(exc.filename or '')).name})."
    log.error("unexpected error%s", f" while {what}" if what else "", exc_info=exc)
    return GENERIC_ERROR
