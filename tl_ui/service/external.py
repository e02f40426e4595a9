"""A finished run on new data (issue 34): "validate" (another site's labelled data) and "score a batch"
(unlabelled inputs), for the page, the API and the CLI.

The upload is size-checked and read here with the Data step's own readers and limits (tl_ui/data: no
model, no torch); the model answers in an inference worker of its own (`InferencePool.call_long`, verbs
`validate`, `score_batch` and `recalibrate`), which streams the inputs a batch at a time, reports progress and honours
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

    def _labelled(self, owner, src, name: str, columns: Optional[dict]):
        """(the upload's path, its LabelledDataset), read with the Data step's readers and limits."""
        from tl_ui.data import DataError, load_dataset

        path, workdir = self._upload(owner, src, name)
        try:
            dataset = load_dataset(path, workdir, limits=self.settings.limits(),
                                   **{k: v or None for k, v in (columns or {}).items()})
        except DataError as exc:
            raise UserError(str(exc)) from None
        dataset.source = name or dataset.source
        return path, dataset

    def validate(self, owner, run: RunFolder, src, name: str = "", *, columns: Optional[dict] = None,
                 recalibrate: bool = False, site: str = "", seed: int = 0,
                 on_progress: Progress = _no_progress, should_stop=lambda: False) -> dict:
        """validation.json's dict (docs/contracts.md) and `files`: owner-only copies of validation.json and
        validation_predictions.csv; with `recalibrate`, also `recalibration` (what `recalibrate` answers). Raises
        UserError with a plain sentence."""
        path, dataset = self._labelled(owner, src, name, columns)
        sha = data_sha256(path)
        report = self._long(owner, "validate", {"run_dir": str(run.path.resolve()),
                                                "dataset": dataclasses.asdict(dataset), "data_sha256": sha},
                            run.new_validation_folder(), on_progress, should_stop)
        folder = Path(report.pop("folder"))
        report["files"] = self._copies(owner, folder, ("validation.json", "validation_predictions.csv"), run.id)
        if recalibrate:
            report["recalibration"] = self._recalibrate(owner, run, dataset, sha, site, seed, on_progress,
                                                        should_stop)
        return report

    def recalibrate(self, owner, run: RunFolder, src, name: str = "", *, columns: Optional[dict] = None,
                    site: str = "", seed: int = 0, on_progress: Progress = _no_progress,
                    should_stop=lambda: False) -> dict:
        """The run refitted for a new site on a random stratified half of its labelled data and checked on the
        other half, saved as a new, linked run of the same owner (shared weights; its own temperature and
        thresholds): {"run_id", "parent_run_id", "site", "recalibration" (metrics.json's block: before vs after,
        "sentence"), "files" (the new run's downloads)}."""
        path, dataset = self._labelled(owner, src, name, columns)
        return self._recalibrate(owner, run, dataset, data_sha256(path), site, seed, on_progress, should_stop)

    def _recalibrate(self, owner, run: RunFolder, dataset, sha: str, site: str, seed: int, on_progress,
                     should_stop) -> dict:
        new = self.workspace.new_run(owner)
        args = {"run_dir": str(run.path.resolve()), "dataset": dataclasses.asdict(dataset), "data_sha256": sha,
                "new_run_dir": str(new.path.resolve()), "site": site or dataset.source, "seed": int(seed or 0),
                "max_image_pixels": self.settings.limits().max_image_pixels}
        try:
            done = self.inference.call_long(owner.id, "recalibrate", args, kind="inference",
                                            busy_message=BUSY_MESSAGE, on_progress=on_progress,
                                            should_stop=should_stop)
        except InferenceError as exc:
            shutil.rmtree(new.path, ignore_errors=True)   # a worker ended mid-way cannot clean up after itself
            raise UserError(str(exc)) from None
        done.pop("run_dir", None)
        done["files"] = {k: (str(v) if v else None) for k, v in self.private.run_downloads(owner, new.path).items()}
        return done

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
        from tl_ui.jobs.inference.ray_scoring import score_batch_in_ray, use_ray

        if use_ray(self.settings, len(inputs.items)):   # TL_EXECUTOR=ray: a large batch split across Ray tasks
            try:
                written = score_batch_in_ray(run.path.resolve(), dataclasses.asdict(inputs), run.new_scores_folder(),
                                             level=level, max_image_pixels=self.settings.limits().max_image_pixels,
                                             on_progress=on_progress, should_stop=should_stop)
            except InferenceError as exc:
                raise UserError(str(exc)) from None
        else:
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
