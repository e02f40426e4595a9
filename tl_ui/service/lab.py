"""The app's verbs, called by the page (tl_ui/ui), the API (tl_ui/ui/api.py) and the CLI alike.

Load a dataset for an owner, describe a plan, start / stop / list runs, predict, explain, give a
run's files. Everything here is checked and bounded once; callers only translate their inputs and
show the outcome. Errors a person must act on are `UserError` (shown verbatim). No model is ever
loaded in this process: predictions, explanations and plans are answered by the inference workers
(tl_ui/jobs/inference), after the run was found to be the asker's.
"""
from __future__ import annotations

import base64
import logging
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from tl_ui.core.config import ConfigError, RunConfig
from tl_ui.contracts import RunState
from tl_ui.core.run_info import RunInfo
from tl_ui.core.runfolder import QUEUED, RunFolder
from tl_ui.jobs.inference import Code, InferenceCaps, InferenceError, InferencePool
from tl_ui.jobs.runner import Job, QueueFull, Runner
from tl_ui.service.identity import Identity, load_secret
from tl_ui.service.owners import Owner
from tl_ui.service.private_files import PrivateFiles
from tl_ui.service.workspace import Workspace, safe_file_name
from tl_ui.core.settings import Settings
from tl_ui.service.errors import NO_DATA_MESSAGE, UserError

log = logging.getLogger(__name__)

SAMPLE_NAMES = {"image": "the sample images (handwritten digits)", "text": "the sample texts (movie reviews)"}
KIND_WORDS = {"image": "images", "text": "texts"}
EXPLAIN_NOT_INSTALLED = ("Explanations are not installed on this server ({missing} is missing). The prediction above "
                         "still holds; ask whoever runs Transfer Lab to install the 'explain' extra "
                         "(pip install -e '.[explain]').")


@dataclass
class LoadOutcome:
    """What a load attempt produced: a dataset or a user-facing error."""
    dataset: Any = None
    error: str = ""
    name: str = ""
    data_path: str = ""


class Lab:
    def __init__(self, settings: Settings, train_fn=None, cache_dir: Optional[Path] = None):
        self.settings = settings
        self.workspace = Workspace(settings.runs_dir)
        self.identity = Identity(load_secret(self.workspace.root))
        self.private = PrivateFiles(cache_dir, self.identity, link_ttl_s=settings.session_ttl_hours * 3600)
        from tl_ui.jobs.executors import make_executor  # torch and ray stay out of this process

        self.runner = Runner(settings.max_jobs, train_fn=train_fn,
                             executor=None if train_fn is not None else make_executor(settings),
                             max_per_owner=settings.max_queued_per_user, max_queued=settings.max_queued,
                             max_per_address=settings.max_queued_per_address, on_done=self._job_done)
        self.recovered = self.workspace.recover_interrupted()
        # where models answer: the inference workers (the web process holds no model)
        self.inference = InferencePool(InferenceCaps.from_settings(settings), self.workspace.root)
        self._cleanup_thread: Optional[threading.Thread] = None
        self._stop_cleanup = threading.Event()
        from tl_ui.service.advise import Advisor
        from tl_ui.service.shelf_facts import ShelfFacts

        self.advisor = Advisor(settings, self.inference)
        from tl_ui.service.external import ExternalData

        self.external = ExternalData(settings, self.inference, self.workspace, self.private)   # issue 34
        from tl_ui.service.sharing import Sharing

        self.sharing = Sharing(self.inference, self.private)   # issue 39: ONNX, int8, the Space
        from tl_ui.service.labelling import Labelling

        self.labelling = Labelling(settings, self.inference, self.workspace)   # issue 41
        # weights per strategy: the shipped table, else counted once in a worker and kept in the runs folder
        self.shelf_facts = ShelfFacts(self.workspace.root, max_params_m=settings.max_model_params_m,
                                      memory_gb=settings.job_memory_gb)

    def owner(self, request) -> Owner:
        return self.identity.owner(request)

    def bind_page(self, request, stored_token: Optional[str]) -> tuple[Owner, str]:
        """Page load: (owner, token for the page to keep in its own storage)."""
        return self.identity.bind(request, stored_token)

    # -- data -------------------------------------------------------------------------------------
    def load_data(self, owner: Owner, src: str | Path, name: str = "", *, text_column: Optional[str] = None,
                  label_column: Optional[str] = None, group_column: Optional[str] = None,
                  copy: bool = True, **label_reading: Optional[str]) -> LoadOutcome:
        """Size-check, copy the upload into the owner's folder, and read it. Never raises."""
        from tl_ui.service.errors import user_message

        src, name = Path(src), name or Path(src).name
        try:
            from tl_ui.data import load_dataset
            from tl_ui.data.limits import human_size

            size = src.stat().st_size if src.is_file() else 0
            if size > self.settings.max_upload_bytes:  # before anything is copied or unpacked
                return LoadOutcome(error=(
                    f"The file '{name}' is {human_size(size)}; this Transfer Lab accepts uploads up to "
                    f"{human_size(self.settings.max_upload_bytes)} (setting TL_MAX_UPLOAD_MB). Upload fewer or "
                    "smaller images, or fewer rows."), name=name)
            workdir = self.workspace.uploads_dir(owner)
            data_path = src
            if copy and src.is_file():
                data_path = workdir / safe_file_name(name)
                shutil.copyfile(src, data_path)
            try:
                dataset = load_dataset(data_path, workdir / "unpacked", text_column=text_column or None,
                                       label_column=label_column or None, group_column=group_column or None,
                                       **{k: v or None for k, v in label_reading.items()},   # multi-label
                                       limits=self.settings.limits())
            except Exception as exc:  # DataError (user-facing) or anything unexpected (logged)
                return LoadOutcome(error=user_message(exc, "reading the data"), name=name, data_path=str(data_path))
            return LoadOutcome(dataset=dataset, name=name, data_path=str(data_path))
        except Exception as exc:
            return LoadOutcome(error=user_message(exc, "reading the data"), name=name)

    def load_sample(self, owner: Owner, modality: str) -> LoadOutcome:
        from tl_ui.data import sample_dataset_path

        return self.load_data(owner, sample_dataset_path(modality), SAMPLE_NAMES[modality], copy=False)

    # -- plans --------------------------------------------------------------------------------------
    def make_config(self, model_id: str, options: Mapping[str, Any], dataset=None, data_path: str = "") -> RunConfig:
        """The run's config from any caller's options, checked against the model and the data."""
        from tl_ui.core.catalog import get_model

        modality = getattr(dataset, "modality", None)
        try:
            entry = get_model(model_id, modality)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if dataset is not None and entry.modality != dataset.modality:
            kind = KIND_WORDS[dataset.modality]
            raise UserError(f"The model '{entry.display_name}' reads {KIND_WORDS[entry.modality]}, but your data "
                            f"are {kind}. Pick a model for {kind} in step 1.")
        if self.settings.offline and not entry.offline:
            raise UserError(f"Offline mode is on and '{entry.display_name}' is not installed here. "
                            "Pick a model with 'Offline: yes' in step 1.")
        columns = {k: getattr(dataset, k, None) for k in ("group_column",)} if dataset is not None else {}
        from tl_ui.data.multilabel import label_options

        columns.update(label_options(dataset))   # multi-label: how the labels were read, for the worker
        try:
            config = RunConfig.from_options({**{k: v for k, v in columns.items() if v}, **options,
                                             "model_id": entry.id if entry.source == "packaged" else model_id,
                                             "data_path": data_path},
                                            modality=modality or entry.modality,
                                            n_examples=len(dataset) if dataset is not None else None)
            if dataset is not None:   # the task checks it again in the worker; here the page hears it at once
                config.check_positive_class(dataset.classes, multilabel=bool(getattr(dataset, "multilabel", False)))
            return self.settings.run_limits().check(config)
        except ConfigError as exc:
            raise UserError(str(exc)) from None

    def plan(self, model_id: str, options: Mapping[str, Any], dataset=None) -> dict:
        """What a run would train and roughly how long it takes (for the Strategy step). Numbers only:
        no model is built in this process (tl_ui/service/shelf_facts.py)."""
        from tl_ui.core.catalog import get_model
        from tl_ui.engine.planning.estimate import estimate_seconds

        config = self.make_config(model_id, options, dataset)
        n_classes = len(dataset.classes) if dataset is not None else 10
        entry = get_model(config.model_id, getattr(dataset, "modality", None))
        numbers = (None if config.strategy == "auto" else   # auto: each try trains its own share
                   self.shelf_facts.describe(entry, config.strategy, n_classes, config.unfreeze_groups,
                                             config.lora_rank))
        # None: a Hub model not on this computer yet; the run downloads, size-checks and counts it in the queue
        out = {"config": config, **(numbers or {"trainable": None, "total": None, "share": None}),
               "n": None, "seconds": None}
        if dataset is not None:
            n = min(len(dataset), config.max_examples or len(dataset))
            out.update(n=n, seconds=estimate_seconds(config, n) * (2 if config.compare_scratch else 1))
        return out

    def advise(self, owner: Owner, dataset, options: Optional[Mapping[str, Any]] = None, **progress) -> list[dict]:
        """Rank the offline models for the owner's dataset, best first (tl_ui/service/advise.py); the
        embeddings stay in the owner's cache for the run that follows."""
        return self.advise_and_map(owner, dataset, options, **progress)[0]

    def advise_and_map(self, owner: Owner, dataset, options: Optional[Mapping[str, Any]] = None, **progress):
        """(the ranked rows, the data map in the best model's embeddings: tl_ui/engine/advisor/data_map.py)."""
        return self.advisor.advise_and_map(dataset, dict(options or {}), embedding_cache=self._embedding_cache(owner),
                                           owner=owner.id, **progress)

    # -- runs ---------------------------------------------------------------------------------------
    def start_run(self, owner: Owner, dataset, data_path: str, model_id: str,
                  options: Mapping[str, Any], address: Optional[str] = None) -> Job:
        """Check, record and queue a run (and its from-scratch companion when asked for).
        `address`: the caller's client address (`gr.Request.client.host`); it counts toward the
        per-address cap only for callers without a login."""
        if dataset is None:
            raise UserError(NO_DATA_MESSAGE)
        config = self.make_config(model_id, options, dataset, data_path)
        provenance = self.labelling.provenance_for(owner, data_path) if data_path else None
        if provenance:   # labels given in Transfer Lab: where they came from, in run.json (issue 41)
            config.extra = {**config.extra, "labels_provenance": provenance}
        if data_path and Path(data_path).exists():
            kept, sha = self.workspace.keep_dataset(owner, data_path)  # replays survive upload clean-up
            config.data_path, config.data_sha256 = str(kept), sha
        config.limits = {**config.limits, **self.settings.limits_record()}   # data limits + run limits
        job = self._submit(owner, config, dataset, address)
        if config.compare_scratch:
            scratch = RunConfig.from_dict({**config.to_dict(), "random_init": True, "compare_scratch": False,
                                           "extra": {**config.extra, "scratch_of": job.id}})
            try:
                companion = self._submit(owner, scratch, dataset, address)
            except UserError:
                log.info("no room for the scratch companion of %s", job.id)
            else:
                RunFolder(job.run_dir).set_status(QUEUED, "", scratch_run=companion.id)
        return job

    def _submit(self, owner: Owner, config: RunConfig, dataset, address: Optional[str] = None) -> Job:
        run = self.workspace.new_run(owner).create()
        config.save(run.run_json)
        run.set_status(QUEUED)  # on disk from the moment it is accepted
        try:
            return self.runner.submit(config, run.path, owner=owner.id, dataset=dataset, run_id=run.id,
                                      label=f"{config.model_id}/{config.strategy}", log_name=owner.log_name,
                                      address=None if owner.is_user else (address or None),
                                      embedding_cache=self._embedding_cache(owner))
        except QueueFull as exc:
            shutil.rmtree(run.path, ignore_errors=True)
            raise UserError(str(exc)) from None

    def continue_run(self, owner: Owner, run_id: str, epochs: int, address: Optional[str] = None) -> Job:
        """Train a finished run `epochs` more epochs from its best weights, as a new run linked to it
        (tl_ui/engine/training/continuation.py): the same recipe and data, its epochs numbered after the parent's."""
        from tl_ui.engine.training.continuation import continue_config, why_not

        parent = self.run(owner, run_id)
        if parent.state() != RunState.FINISHED or not parent.has_model:
            raise UserError("Only a finished run with a model can be continued. Pick a run that finished.")
        reason = why_not(parent)
        if reason:
            raise UserError(reason)
        try:
            epochs = int(epochs)
        except (TypeError, ValueError):
            epochs = 0
        if epochs < 1:
            raise UserError("More epochs must be a whole number of at least 1.")
        try:
            config = self.settings.run_limits().check(continue_config(parent.config(), parent.id, epochs))
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        if config.data_path and not Path(config.data_path).exists():
            raise UserError("This run's data are no longer kept here, so it cannot be continued. Load the data "
                            "again and start a new run.")
        return self._submit(owner, config, None, address)

    def embedding_cache(self, owner: Owner) -> Optional[dict]:
        return self._embedding_cache(owner)

    def _embedding_cache(self, owner: Owner) -> Optional[dict]:
        """Where the owner's runs keep embeddings for the next run, and how much (None: switched off)."""
        if self.settings.embedding_cache_mb <= 0:
            return None
        return {"dir": str(self.workspace.embeddings_dir(owner)),
                "max_bytes": int(self.settings.embedding_cache_mb * 1024 * 1024)}

    def _job_done(self, job: Job) -> None:
        """Runner hook: a scratch companion that finished fills in its main run's comparison."""
        main_id = (getattr(job.config, "extra", None) or {}).get("scratch_of")
        if main_id:
            from tl_ui.service.compare import link_scratch_run

            link_scratch_run(RunFolder(job.run_dir.parent / main_id), RunFolder(job.run_dir))

    def stop_run(self, owner: Owner, run_id: str) -> bool:
        return self.runner.stop((run_id or "").strip(), owner.id)

    def job(self, owner: Owner, run_id: str) -> Optional[Job]:
        return self.runner.get(run_id, owner.id) if run_id else None

    def active_job(self, owner: Owner) -> Optional[Job]:
        return self.runner.active_job(owner.id)

    def list_runs(self, owner: Owner) -> list[RunInfo]:
        return self.workspace.list_runs(owner)

    def run(self, owner: Owner, run_id: str) -> RunFolder:
        run = self.workspace.run(owner, (run_id or "").strip())
        if run is None:
            raise UserError(f"There is no run '{run_id}' for you. Check the run id (see 'Previous runs').")
        return run

    def run_files(self, owner: Owner, run_id: str) -> dict:
        """Private copies of a run's downloads: model zip, run.json, model card (None if absent)."""
        return self.private.run_downloads(owner, self.run(owner, run_id).path)

    # -- predictions (answered by the inference workers: tl_ui/jobs/inference) --------------------------
    def ask_inference(self, owner_id: str, verb: str, args: dict, **kwargs) -> dict:
        """One request to the inference workers; their plain sentences become UserError."""
        try:
            return self.inference.call(owner_id, verb, args, **kwargs)
        except InferenceError as exc:
            if exc.code == Code.MISSING_EXTRA:   # grad-cam / captum are the 'explain' extra
                raise UserError(EXPLAIN_NOT_INSTALLED.format(missing=exc.missing)) from None
            raise UserError(str(exc)) from None

    def _model_run(self, owner: Owner, run_id: str, what: str) -> RunFolder:
        run = self.run(owner, run_id)   # the asker's own run, or UserError: checked before any request
        if not run.has_model:
            raise UserError(f"This run has no finished model to {what}. Pick a run that finished.")
        return run

    def _input(self, owner: Owner, run: RunFolder, image, text, empty: dict) -> str:
        """The one input to answer for, as the worker reads it: an image file's path, or the text."""
        if run.modality() == "image":
            if image is None or (isinstance(image, str) and not image.strip()):
                raise UserError(empty["image"])
            if hasattr(image, "save"):   # a PIL image from a caller in this process: as a file the worker reads
                path = self.workspace.uploads_dir(owner) / f"try-{uuid.uuid4().hex[:12]}.png"
                image.save(path)
                return str(path)
            return str(image)
        if not text or not str(text).strip():
            raise UserError(empty["text"])
        return str(text)

    def predict(self, owner: Owner, run_id: str, image=None, text=None, level: Optional[float] = None) -> dict:
        """{"probabilities": {class: p}, "prediction_set": [...], "set_level": 0.9, "set_sentence": str,
        "unlike_training_data": bool or None, "unlike_training_data_score", ...} (Predictor.predict_with_set)."""
        run = self._model_run(owner, run_id, "predict with")
        item = self._input(owner, run, image, text, {"image": "Upload an image to classify.",
                                                     "text": "Type some text to classify."})
        answer = self.ask_inference(owner.id, "predict", {"run_dir": str(run.path.resolve()), "items": [item],
                                                          "level": level})
        return answer["answers"][0]

    def explain(self, owner: Owner, run_id: str, image=None, text=None, target: Optional[str] = None) -> dict:
        """What the run's answer for one input rests on (tl_ui.engine.inference.explain, in an inference worker):
        {"kind", "class", "probability", "predicted", and for images "overlay_png" (PNG bytes) and
        "overlay_path" (that PNG in the owner's private folder), for texts "words" and "html"}.
        `target`: the class to explain (default: the predicted one)."""
        run = self._model_run(owner, run_id, "explain")
        item = self._input(owner, run, image, text, {"image": "Upload an image first.",
                                                     "text": "Type some text first."})
        why = self.ask_inference(owner.id, "explain", {"run_dir": str(run.path.resolve()), "item": item,
                                                       "target": target})
        if why.get("overlay_png"):
            why["overlay_png"] = base64.b64decode(why["overlay_png"])
            path = self.private.new_folder(owner, "why") / "why.png"
            path.write_bytes(why["overlay_png"])
            why["overlay_path"] = str(path)
        return why

    # -- new data for a finished run (issue 34: service/external.py, long requests in a worker of their own) ----
    def validate(self, owner: Owner, run_id: str, src, name: str = "", *, columns: Optional[dict] = None,
                 recalibrate: bool = False, site: str = "", seed: int = 0, **progress) -> dict:
        """The run on another site's labelled data, not retrained: validation.json's dict (docs/contracts.md) and
        `files` (owner-only copies of validation.json and validation_predictions.csv); with `recalibrate`, also
        `recalibration` (as `recalibrate` answers)."""
        run = self._model_run(owner, run_id, "validate")
        return self.external.validate(owner, run, src, name, columns=columns, recalibrate=recalibrate, site=site,
                                      seed=seed, **progress)

    def recalibrate(self, owner: Owner, run_id: str, src, name: str = "", *, columns: Optional[dict] = None,
                    site: str = "", seed: int = 0, **progress) -> dict:
        """The run recalibrated for a new site (refitted on a random half of its labelled data, checked on the other
        half), saved as a new, linked run of yours: {"run_id", "parent_run_id", "site", "recalibration", "files"}."""
        run = self._model_run(owner, run_id, "recalibrate")
        return self.external.recalibrate(owner, run, src, name, columns=columns, site=site, seed=seed, **progress)

    def score_batch(self, owner: Owner, run_id: str, src, name: str = "", *, columns: Optional[dict] = None,
                    level: Optional[float] = None, **progress) -> dict:
        """Unlabelled inputs scored by the run: {"n", "n_flagged", "files": {"predictions.csv", "predictions.xlsx"}}."""
        run = self._model_run(owner, run_id, "score inputs with")
        return self.external.score_batch(owner, run, src, name, columns=columns, level=level, **progress)

    # -- share & export (issue 39: service/sharing.py, a long request in a worker of its own) ---------------------
    def export_onnx(self, owner: Owner, run_id: str, *, int8: bool = True, **progress) -> dict:
        """The run's model as ONNX (fp32, and int8 measured on the test examples) in its exports/onnx/ folder:
        {"report": onnx_report.json, "sentence": int8's one sentence, "zip": an owner-only zip}."""
        run = self._model_run(owner, run_id, "export")
        return self.sharing.export(owner, run, int8=int8, **progress)

    def share_space(self, owner: Owner, run_id: str, **progress) -> dict:
        """A Gradio Space folder for the run's model (exports/space/): {"zip": an owner-only zip, ...}."""
        run = self._model_run(owner, run_id, "share")
        return self.sharing.export(owner, run, space=True, **progress)

    def onnx_report(self, owner: Owner, run_id: str) -> Optional[dict]:
        """The run's last ONNX export's onnx_report.json, or None."""
        return self.sharing.report(self.run(owner, run_id))

    def warm_predictor(self, owner: Owner, run_id: str) -> None:
        """Have the run's model loaded in the background (Results shows the run), so that even the first
        try-it answer does not wait for it; later answers reuse it (the inference worker keeps it)."""
        try:
            run = self.run(owner, run_id)
        except UserError:
            return
        if run.has_model:
            threading.Thread(target=self._warm, args=(owner, run.path), name="tl-warm-predictor", daemon=True).start()

    def _warm(self, owner: Owner, run_dir: Path) -> None:
        try:
            self.inference.call(owner.id, "load", {"run_dir": str(Path(run_dir).resolve())})
        except InferenceError as exc:   # a broken or too big model, a busy server: the try-it click says so
            log.info("could not preload the model of %s: %s", Path(run_dir).name, exc)

    # -- clean-up and shutdown ------------------------------------------------------------------------
    def cleanup_once(self) -> None:
        from tl_ui.service.owners import Owner as _Owner

        ttl = self.settings.session_ttl_hours * 3600
        active = {_Owner(*j.owner.split(":", 1)).key for j in self.runner.jobs() if not j.done and ":" in j.owner}
        removed = self.workspace.cleanup(ttl, active_owner_keys=active)
        n_private = self.private.cleanup(ttl)
        if removed or n_private:
            log.info("clean-up removed %d folder(s) and %d private cache item(s)", len(removed), n_private)

    def start_background(self) -> None:
        if self._cleanup_thread and self._cleanup_thread.is_alive():
            return
        def prestart():
            if hasattr(self.runner.executor, "prestart"):   # a warm worker imports torch now, not at the first run
                self.runner.executor.prestart()
            self.inference.prestart()   # the inference worker too: the first try-it answer waits for no import

        # in the background: the first worker may wait for the fork server's imports (tl_ui/jobs/forkserver.py)
        threading.Thread(target=prestart, name="tl-prestart", daemon=True).start()
        from tl_ui.core.catalog import hub_reachable, offline_mode

        if not offline_mode():  # learn early whether online models can be offered (remembered)
            threading.Thread(target=hub_reachable, name="tl-hub-check", daemon=True).start()

        def loop():
            while not self._stop_cleanup.wait(self.settings.cleanup_minutes * 60):
                try:
                    self.cleanup_once()
                except Exception:  # never let the clean-up thread die
                    log.exception("clean-up failed")

        self._cleanup_thread = threading.Thread(target=loop, name="tl-cleanup", daemon=True)
        self._cleanup_thread.start()

    def close(self) -> None:
        self._stop_cleanup.set()
        self.inference.close()
        self.runner.shutdown(stop_jobs=True, timeout=15)
