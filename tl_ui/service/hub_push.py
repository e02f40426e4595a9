"""Push a run's model (a model repo with its card) or its Space to the Hugging Face Hub (issue 39).

The token comes from `HF_TOKEN` (or the page's password box) and is passed to huggingface_hub only: never
logged, stored or shown, and removed from any message. Repositories are private. Offline (HF_HUB_OFFLINE set, or
huggingface.co unreachable within a few seconds) the answer is a plain sentence, without waiting and without a
traceback; the page offers the zip instead.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

HUB_HOST = "huggingface.co"
REACH_TIMEOUT_S = 4.0


class PushError(Exception):
    """Why the push did not happen, in one sentence."""


def offline_reason() -> Optional[str]:
    """A sentence when the Hub cannot be reached from here (checked in seconds), else None."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return ("This Transfer Lab works offline (HF_HUB_OFFLINE is set), so it cannot push to the Hugging Face Hub. "
                "Download the zip and upload it from a computer with a network.")
    try:
        socket.create_connection((HUB_HOST, 443), timeout=REACH_TIMEOUT_S).close()
    except OSError:
        return (f"The Hugging Face Hub ({HUB_HOST}) cannot be reached from this computer. Download the zip and upload "
                "it from a computer with a network.")
    return None


def push_folder(folder: str | Path, repo: str, *, space: bool, token: Optional[str] = None) -> str:
    """create_repo(private=True) + upload_folder; returns the repository's address. Raises PushError."""
    reason = offline_reason()
    if reason:
        raise PushError(reason)
    token = token or os.environ.get("HF_TOKEN") or None
    if not token:
        raise PushError("Pushing needs a Hugging Face access token with write permission: set HF_TOKEN (or type it "
                        "into the token box). It is used for this push only and never stored.")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    kind = "space" if space else "model"
    try:
        url = api.create_repo(repo, repo_type=kind, private=True, exist_ok=True,
                              **({"space_sdk": "gradio"} if space else {}))
        api.upload_folder(folder_path=str(folder), repo_id=url.repo_id, repo_type=kind,
                          commit_message="Upload from Transfer Lab")
    except Exception as exc:   # HTTP errors, bad names, no permission: one sentence, the token never in it
        text = str(exc).replace(token, "***").splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise PushError(f"The Hub refused the push to '{repo}': {text}") from None
    return str(url)
