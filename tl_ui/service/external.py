"""A finished run on new data (issue 34): "validate" (another site's labelled data) and "score a batch"
(unlabelled inputs), for the page, the API and the CLI.

The upload is size-checked and read here with the Data step's own readers and limits (tl_ui/data: no
model, no torch); the model answers in an inference worker of its own (`InferencePool.call_long`, verbs
`validate` and `score_batch`), which streams the inputs a batch at a time, reports progress and honours
Stop, and writes its files into the run's folder (validation/<id>/, scores/<id>/: tl_ui/core/runfolder.py).
The run must be the asker's (`Lab._model_run`, checked before anything is sent); the files come back as
owner-only private copies (service/private_files.py), like every other download.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Callable, Optional

from tl_ui.core.runfolder import RunFolder
from tl_ui.jobs.inference import InferenceError
from tl_ui.service.errors import UserError
from tl_ui.service.workspace import data_sha256, safe_file_name

BUSY_MESSAGE = "Another long request (a check on new data, a batch, or the model advisor) is running. Try again in a minute."
Progress = Callable[[int, int, str], None]


def _no_progress(done: int, total: int, message: str) -> None:
    return None


class ExternalData:
    def __init__(self, settings, inference, workspace, private):
        self.settings, self.inference, self.workspace, self.private = settings, inference, workspace, private

    def _upload(self, owner, src, name: str) -> tuple[Path, Path]:
        """(the upload copied into the owner's folder, a working folder beside it), after the size check."""
        from tl_ui.data.limits import human_size

        src = Path(src)
        name = name or src.name
        if not src.exists():
            raise UserError(f"Could not find '{name}'. Upload it again.")
        size = src.stat().st_size if src.is_file() else 0
        if size > self.settings.max_upload_bytes:
            raise UserError(f"The file '{name}' is {human_size(size)}; this Transfer Lab accepts uploads up to "
                            f"{human_size(self.settings.max_upload_bytes)} (setting TL_MAX_UPLOAD_MB). Split it into "
                            "smaller parts.")
        workdir = self.workspace.uploads_dir(owner)
        path = src
        if src.is_file():
            path = workdir / safe_file_name(name)
            shutil.copyfile(src, path)
        return path, workdir / "unpacked"

    def _long(self, owner, verb: str, args: dict, out_dir: Path, on_progress: Progress, should_stop) -> dict:
        """One long request; `out_dir` (inside the run's folder) gets its files, and is removed when it gives no
        answer (Stop, a cap, a crash: a worker ended mid-batch cannot clean up after itself)."""
        args = {**args, "max_image_pixels": self.settings.limits().max_image_pixels, "out_dir": str(out_dir)}
        try:
            return self.inference.call_long(owner.id, verb, args, kind="inference", busy_message=BUSY_MESSAGE,
                                            on_progress=on_progress, should_stop=should_stop)
        except InferenceError as exc:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise UserError(str(exc)) from None

    def validate(self, owner, run: RunFolder, src, name: str = "", *, columns: Optional[dict] = None,
                 on_progress: Progress = _no_progress, should_stop=lambda: False) -> dict:
        """validation.json's dict (docs/contracts.md) and `files`: owner-only copies of validation.json and
        validation_predictions.csv. Raises UserError with a plain sentence."""
        from tl_ui.data import DataError, load_dataset

        path, workdir = self._upload(owner, src, name)
        try:
            dataset = load_dataset(path, workdir, limits=self.settings.limits(),
                                   **{k: v or None for k, v in (columns or {}).items()})
        except DataError as exc:
            raise UserError(str(exc)) from None
        dataset.source = name or dataset.source
        report = self._long(owner, "validate", {"run_dir": str(run.path.resolve()),
                                                "dataset": dataclasses.asdict(dataset),
                                                "data_sha256": data_sha256(path)},
                            run.new_validation_folder(), on_progress, should_stop)
        folder = Path(report.pop("folder"))
        report["files"] = self._copies(owner, folder, ("validation.json", "validation_predictions.csv"), run.id)
        return report

    def score_batch(self, owner, run: RunFolder, src, name: str = "", *, columns: Optional[dict] = None,
                    level: Optional[float] = None, on_progress: Progress = _no_progress,
                    should_stop=lambda: False) -> dict:
        """{"n", "n_flagged", "files": {"predictions.csv": private copy, "predictions.xlsx": ... or None}}."""
        from tl_ui.data import DataError
        from tl_ui.data.unlabelled import load_inputs

        path, workdir = self._upload(owner, src, name)
        try:
            inputs = load_inputs(path, workdir, limits=self.settings.limits(),
                                 **{k: v or None for k, v in (columns or {}).items()})
        except DataError as exc:
            raise UserError(str(exc)) from None
        written = self._long(owner, "score_batch", {"run_dir": str(run.path.resolve()),
                                                    "inputs": dataclasses.asdict(inputs), "level": level},
                             run.new_scores_folder(), on_progress, should_stop)
        folder = Path(written.pop("folder"))
        written["files"] = self._copies(owner, folder, ("predictions.csv", "predictions.xlsx"), run.id)
        written["warnings"] = inputs.warnings
        return written

    def _copies(self, owner, folder: Path, names: tuple[str, ...], run_id: str) -> dict:
        """Owner-only copies (signed links) of the files the worker wrote; None for one it did not."""
        target = self.private.new_folder(owner, f"new-data-{run_id}")
        return {n: (str(self.private.copy(owner, folder / n, n, target)) if (folder / n).is_file() else None)
                for n in names}
