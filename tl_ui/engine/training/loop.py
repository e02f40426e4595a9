"""The training loop: one run from a RunConfig to a run folder with metrics and an exported model, for
every kind of task (its loss, scores, choices and metrics: tl_ui/engine/tasks) and every strategy.

Model-agnostic (minGPT style): the loop knows a forward function, loaders and a plan of which
parameters train; it reports through typed events and honours `should_stop()` before every
optimisation step. `accelerate` places everything on the device (CPU here, CUDA with mixed
precision when present; the same code runs under `accelerate launch`). The stages it calls (the
probe's head, SetFit's pairs, continuing a parent, the familiarity reference) read and set only what
`RunContext` (context.py) declares.
"""
from __future__ import annotations

import logging
import math
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tl_ui.contracts import RunState
from tl_ui.contracts.events import EpochEnd, Progress, RunFinished, RunStarted, RunStopped, StepEnd
from tl_ui.core.catalog import ModelUnavailable, get_model
from tl_ui.core.config import AUTO, PROBE_MAX_ITER, ConfigError, RunConfig
from tl_ui.core.runfolder import RunFolder
from tl_ui.data import DataError, LabelledDataset, Limits, load_dataset, stratified_subset
from tl_ui.data.images import image_reading_note
from tl_ui.data.load import dataset_options
from tl_ui.engine.evaluation.report import keep_mistake_images
from tl_ui.engine.evaluation.roles import Roles, split_roles
from tl_ui.engine.export.folder import export_model
from tl_ui.engine.models.build import load_model
from tl_ui.engine.models.fast_path import float32_islands, training_autocast
from tl_ui.engine.models.inputs import forward_logits, make_dataset, make_loader
from tl_ui.engine.models.sentence import sentence_model_for
from tl_ui.engine.probe.embedding_cache import bind_probe_caches
from tl_ui.engine.probe.features import Stopped, embed_sets, probe_head
from tl_ui.engine.tasks import task_for_dataset
from tl_ui.engine.tasks.base import Evidence, Scored
from tl_ui.engine.training.accelerate_checks import cache_optional_package_checks
from tl_ui.engine.training.context import Examples, RunContext
from tl_ui.engine.training.continuation import resume
from tl_ui.engine.training.recorder import EventCallback, EventRecorder, RunResult, fail_run
from tl_ui.engine.training.setfit import contrastive_stage
from tl_ui.engine.training.stages import familiarity_reference, fit_probe_head
from tl_ui.engine.training.strategies import TrainPlan, plan, snapshot

log = logging.getLogger(__name__)


def train_run(config: RunConfig, run_dir: str | Path, *, on_event: Optional[EventCallback] = None,
              should_stop: Optional[Callable[[], bool]] = None,
              dataset: Optional[LabelledDataset] = None, embedding_cache=None, execute=None) -> RunResult:
    """Train as `config` says, writing everything under `run_dir`. Never raises for a user's mistake:
    a bad setting, bad data or an unavailable model ends the run with a `RunFailed` message.
    `embedding_cache`: an `EmbeddingCache` (or its record) the probe reads and adds embeddings to.
    `execute`: what runs an `auto` config once its data is read (the search, tl_ui/engine/search/run.py,
    which sits above the planning estimates it needs: `tl_ui.engine.train_run` passes it)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = EventRecorder(run_dir, on_event)
    config.save(run_dir / "run.json")
    recorder.status(RunState.RUNNING)
    stop, threads = should_stop or (lambda: False), torch.get_num_threads()
    try:
        config.validate()
        with tempfile.TemporaryDirectory(prefix="tl-data-") as scratch:
            if dataset is None:
                dataset = load_dataset(config.data_path, scratch, **dataset_options(config),
                                       limits=Limits.from_record(config.limits) if config.limits else None)
            if config.strategy == AUTO:   # tries within the budget, then the winner as this run
                if execute is None:
                    raise ConfigError("An 'auto' run goes through tl_ui.engine.train_run (the search), "
                                      "not the training loop alone.")
                return execute(config, run_dir, dataset, recorder, stop, embedding_cache)
            return TrainingRun(config, run_dir, dataset, recorder, stop, embedding_cache).execute()
    except (ConfigError, DataError, ModelUnavailable) as exc:
        return fail_run(recorder, run_dir, str(exc))
    except torch.OutOfMemoryError:
        return fail_run(recorder, run_dir, "The computer ran out of memory. Lower the batch size or the image size "
                                           "and start again.")
    except Exception as exc:  # anything unexpected: keep the details on disk, tell the user plainly
        (run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        log.exception("run %s failed", run_dir.name)
        return fail_run(recorder, run_dir, f"Training failed unexpectedly ({type(exc).__name__}: {str(exc)[:200]}). "
                                           "The details are in error.log in the run folder.")
    finally:
        torch.set_num_threads(threads)   # the probe's (and a config's num_threads) end with the run


@dataclass
class TrialOutcome:
    """What one try of an `auto` search returns (search.py): its outputs on the choose examples only."""
    choose_outputs: np.ndarray
    choose_targets: np.ndarray
    best_epoch: int
    epochs_run: int


class TrainingRun:
    """One run: the task and the examples in their roles at once; the model, the accelerator and the
    RunContext its stages share in `execute()`, which does the work.

    `trial=True`: one try of an `auto` search (search.py). It never sees the test examples (its report
    role is empty, so nothing it does can depend on them), returns a `TrialOutcome` instead of finishing
    (no export, no metrics) and lets `Stopped` through to the search. `extra_metrics` join metrics.json."""

    def __init__(self, config: RunConfig, run_dir: Path, dataset: LabelledDataset, recorder: EventRecorder,
                 should_stop: Callable[[], bool], cache=None, *, trial: bool = False,
                 extra_metrics: Optional[dict] = None):
        self.config, self.run_dir, self.recorder, self.should_stop = config, run_dir, recorder, should_stop
        self.trial, self.extra_metrics = trial, dict(extra_metrics or {})
        if config.max_examples and config.max_examples < len(dataset):
            dataset = stratified_subset(dataset, int(config.max_examples), config.seed)
        self.dataset = dataset
        self.task = task_for_dataset(dataset)
        self.task.check(config)   # before any model is loaded
        if len(dataset.classes) < 2:
            raise DataError("The dataset needs at least two classes to learn to tell apart.")
        targets = dataset.targets
        self.roles = split_roles(dataset, config.val_fraction, config.seed, config.evaluation)
        # "val" = the choose examples (early stopping, calibration); "report" = the test examples
        roles = self.roles
        if trial:   # a try of the search: no test example is read, predicted or even listed
            self.roles = roles = Roles(roles.design, roles.train, roles.choose, roles.report[:0])
        self.examples = Examples(
            classes=dataset.classes, train_items=[dataset.items[i] for i in roles.train],
            val_items=[dataset.items[i] for i in roles.choose], report_items=[dataset.items[i] for i in roles.report],
            train_targets=targets[roles.train], val_targets=targets[roles.choose], report_targets=targets[roles.report])
        self.window = None if config.dicom_window in (None, "header") else config.dicom_window
        self.cache = cache                       # the owner's EmbeddingCache (or its record), or None
        self.embedding_cache = (None, None)      # ...bound to this model's feature settings (the probe)
        self.ctx: Optional[RunContext] = None    # made once the model is loaded

    # -- the run --------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        config, examples = self.config, self.examples
        if config.num_threads:
            torch.set_num_threads(int(config.num_threads))
        set_seed(config.seed)
        cuda = torch.cuda.is_available()
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "no"
        cache_optional_package_checks()
        self.accelerator = Accelerator(cpu=not cuda, mixed_precision=precision)
        self.recorder.muted = not self.accelerator.is_main_process
        entry = get_model(config.model_id, modality=self.dataset.modality)
        if entry.modality != self.dataset.modality:
            raise ConfigError(
                f"The model '{entry.display_name}' works on {entry.modality}s but this dataset holds "
                f"{self.dataset.modality}s. Pick a {self.dataset.modality} model.")
        loaded = load_model(entry, examples.classes, random_init=config.random_init, image_size=config.image_size,
                            max_params_m=config.limits.get("max_model_params_m"))
        loaded = sentence_model_for(loaded, config)   # text probe: the encoder's own pooling
        device = self.accelerator.device
        self.criterion = self.task.criterion(loaded, examples.train_targets, config, device)
        self.ctx = RunContext(config=config, run_dir=self.run_dir, examples=examples, task=self.task, loaded=loaded,
                              window=self.window, device=device, inference_batch=self._inference_batch(),
                              recorder=self.recorder, should_stop=self.should_stop)
        if config.strategy == "linear_probe":
            self.embedding_cache = bind_probe_caches(self.cache, loaded, config, self.window, device.type)
        if self.trial:   # Stopped goes to the search, which knows why (pruned, over budget, the user)
            train_plan, best_epoch, outputs = self._train()
            return TrialOutcome(outputs[0], examples.val_targets, best_epoch, self.ctx.clock.epoch)
        try:
            train_plan, best_epoch, outputs = self._train()
        except Stopped:
            clock = self.ctx.clock
            message = f"Stopped by the user at epoch {clock.epoch}, step {clock.step}. No model was saved."
            self.recorder.emit(RunStopped(run_id=self.run_dir.name, epoch=clock.epoch, step=clock.step,
                                          message=message))
            self.recorder.status(RunState.STOPPED, message)
            return RunResult(self.run_dir.name, self.run_dir, RunState.STOPPED, None, message)
        return self._finish(train_plan, best_epoch, *outputs)

    def _train(self):
        if self.config.strategy in ("linear_probe", "setfit"):   # setfit: pairs first, then the probe
            return self._fit_probe()
        return self._fit_finetune()

    def _data_summary(self) -> dict:
        summary = self.dataset.summary()
        if self.dataset.modality == "image":
            summary["image_reading"] = image_reading_note(self.dataset.items, self.window)
        return summary

    def _inference_batch(self) -> int:
        # On CPU, large batches are slower per image (EfficientNet-Lite0 at 224 px: 142 img/s at
        # batch 8, 54 img/s at batch 32; docs/benchmarks.md); a GPU wants them large.
        batch = int(self.config.batch_size)
        return max(batch, 64) if self.accelerator.device.type == "cuda" else batch

    def _started(self, train_plan: TrainPlan, epochs: int, steps_per_epoch: int, unit: str = "epoch") -> None:
        ctx = self.ctx
        ctx.clock.total_steps = epochs * steps_per_epoch
        self.recorder.emit(RunStarted(
            run_id=self.run_dir.name, model_id=self.config.model_id, strategy=self.config.strategy,
            modality=self.dataset.modality, classes=ctx.examples.classes, n_train=len(ctx.examples.train_items),
            n_val=len(ctx.examples.val_items), epochs=epochs, total_steps=ctx.clock.total_steps,
            trainable_params=train_plan.trainable_params, total_params=train_plan.total_params,
            device=str(self.accelerator.device), unit=unit, score=self.task.score))

    # -- linear probe: embeddings once, then the head on the cache ---------------------------------
    def _fit_probe(self):
        ctx = self.ctx
        config, loaded, examples = self.config, ctx.loaded, ctx.examples
        train_plan = plan(loaded, config)
        resume(ctx, train_plan)   # a continued run starts from its parent's head
        # The full-batch head (the task's) for every model; the minibatch loop only when asked for, as the
        # benchmark's comparison (bench/probe_heads.py).
        minibatch = config.extra.get("probe_head") == "minibatch"
        epochs, batch = (config.resolved_epochs if minibatch else PROBE_MAX_ITER), int(config.batch_size)
        self._started(train_plan, epochs, math.ceil(len(examples.train_items) / batch) if minibatch else 1,
                      unit="epoch" if minibatch else "iteration")
        if config.strategy == "setfit":   # tune the encoder on pairs before the embeddings
            contrastive_stage(ctx)
        # training examples on the fast path (bf16 where native); choose/report exact, as the export computes
        features = embed_sets(
            loaded, (examples.train_items, examples.val_items, examples.report_items), batch_size=ctx.inference_batch,
            device=ctx.device, max_length=config.max_length, window=self.window,
            cache=self.embedding_cache, full_precision=(False, True, True), should_stop=self.should_stop,
            on_progress=lambda done, total, message: self.recorder.emit(Progress(
                stage="embeddings", done=done, total=total, message=message)))
        ctx.features = (features, (examples.train_targets, examples.val_targets, examples.report_targets))
        torch.set_num_threads(1)   # only small tensors from here on: one thread is 3-6x faster (docs/benchmarks.md)
        head = probe_head(loaded)
        val_loader = DataLoader(TensorDataset(features[1], torch.as_tensor(examples.val_targets)), batch_size=256)
        report_loader = DataLoader(TensorDataset(features[2], torch.as_tensor(examples.report_targets)),
                                   batch_size=256)

        def forward(model, batch):
            return model(batch[0])

        if minibatch:
            train_loader = DataLoader(TensorDataset(features[0], torch.as_tensor(examples.train_targets)),
                                      batch_size=batch, shuffle=True,
                                      generator=torch.Generator().manual_seed(config.seed))
            best_epoch = self._fit(head, [(train_plan, epochs)], forward, train_loader, val_loader)
        else:
            best_epoch = fit_probe_head(ctx, head, features)
        return train_plan, best_epoch, (self._predict(head, forward, val_loader),
                                        None if self.trial else
                                        self._predict(head, forward, self.accelerator.prepare(report_loader)))

    # -- partial / full / lora: the ordinary loop ------------------------------------------------------
    def _fit_finetune(self):
        ctx = self.ctx
        config, loaded, examples = self.config, ctx.loaded, ctx.examples
        epochs = config.resolved_epochs
        augment = config.augment and loaded.modality == "image"
        train_data = make_dataset(loaded, examples.train_items, examples.train_targets, augment=augment,
                                  max_length=config.max_length, window=self.window)
        val_data = make_dataset(loaded, examples.val_items, examples.val_targets, augment=False,
                                max_length=config.max_length, window=self.window)
        report_data = None if self.trial else make_dataset(loaded, examples.report_items, examples.report_targets,
                                                           augment=False, max_length=config.max_length,
                                                           window=self.window)
        train_loader = make_loader(loaded, train_data, int(config.batch_size), shuffle=True, seed=config.seed)
        val_loader = make_loader(loaded, val_data, ctx.inference_batch, shuffle=False)
        report_loader = None if self.trial else make_loader(loaded, report_data, ctx.inference_batch, shuffle=False)

        final_plan = plan(loaded, config)  # LoRA wraps the model in a PeftModel here
        continuing = resume(ctx, final_plan)   # from the parent's best weights (its head is settled)
        stages = [(final_plan, epochs)]
        head_epochs = int(config.head_only_epochs)
        if config.strategy == "full" and 0 < head_epochs < epochs and not continuing:
            # probe-then-fine-tune: a settled head first keeps random gradients out of the backbone
            head_plan = plan(loaded, config, head_only=True)
            stages = [(head_plan, head_epochs), (final_plan, epochs - head_epochs)]
        self._started(final_plan, epochs, len(train_loader))
        model = final_plan.model
        best_epoch = self._fit(model, stages, forward_logits, train_loader, val_loader)
        return final_plan, best_epoch, (self._predict(model, forward_logits, val_loader),
                                        None if self.trial else
                                        self._predict(model, forward_logits, self.accelerator.prepare(report_loader)))

    # -- the shared loop ---------------------------------------------------------------------------
    def _fit(self, module: nn.Module, stages: list[tuple[TrainPlan, int]], forward, train_loader, val_loader) -> int:
        """Train `module` through the stages (plan, epochs); returns the best epoch, whose weights it restores."""
        from transformers import get_cosine_schedule_with_warmup

        config, acc, clock = self.config, self.accelerator, self.ctx.clock
        patience = int(config.early_stopping_patience)
        if patience and config.strategy == "linear_probe":
            # Probe epochs cost milliseconds and a fresh head's validation loss is noisy at first:
            # patience 3 stopped scratch probes before they learned anything (bench: 0.10 -> 0.36+).
            patience = max(patience, 10)
        best = (math.inf, 0, None)  # (val loss, epoch, state)
        clock.fit_started = time.time()
        stale, offset = 0, clock.epoch   # offset: a continued run's epochs follow its parent's
        model = acc.prepare(module)
        train_loader, val_loader = acc.prepare(train_loader, val_loader)
        if offset:   # a continued run keeps its parent's weights unless one of its epochs beats them
            best = (self._validate(model, forward, val_loader)[0], offset, snapshot(module))
        for train_plan, n_epochs in stages:
            train_plan.activate(model)
            optimizer = torch.optim.AdamW(train_plan.param_groups, weight_decay=config.weight_decay)
            steps = n_epochs * len(train_loader)
            scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_fraction * steps), steps)
            optimizer, scheduler = acc.prepare(optimizer, scheduler)
            for _ in range(n_epochs):
                clock.epoch += 1
                train_loss, train_acc = self._train_epoch(train_plan, model, forward, train_loader, optimizer,
                                                          scheduler)
                val_loss, val_acc, val_f1 = self._validate(model, forward, val_loader)
                improved = val_loss < best[0] - 1e-6
                if improved:
                    best = (val_loss, clock.epoch, snapshot(module))
                    stale = 0
                else:
                    stale += 1
                elapsed = time.time() - clock.fit_started
                self.recorder.emit(EpochEnd(
                    epoch=clock.epoch, epochs=offset + sum(n for _, n in stages), step=clock.step,
                    train_loss=train_loss, train_accuracy=train_acc, val_loss=val_loss, val_accuracy=val_acc,
                    val_macro_f1=val_f1, elapsed_s=elapsed, eta_s=self._eta(), is_best=improved))
                if patience and stale >= patience:
                    break
            else:
                continue
            break  # early stopping ends every stage
        if best[2] is not None:
            module.load_state_dict(best[2])  # restore the best epoch's weights
        return best[1]

    def _eta(self) -> Optional[float]:
        clock = self.ctx.clock
        if clock.step == 0:
            return None
        per_step = (time.time() - clock.fit_started) / clock.step
        return max(0.0, per_step * (clock.total_steps - clock.step))

    def _train_epoch(self, train_plan: TrainPlan, model, forward, loader, optimizer, scheduler):
        acc, clock, task, loaded = self.accelerator, self.ctx.clock, self.task, self.ctx.loaded
        train_plan.set_train_mode()
        total_loss, counts, seen = 0.0, 0, 0
        islands = float32_islands(model, loaded.modality, self.config.strategy)
        for batch in loader:
            if self.should_stop():
                raise Stopped()
            labels = task.batch_targets(batch)
            with training_autocast(loaded.modality, self.config.strategy, acc.device.type, islands):
                logits = forward(model, batch)
            loss = self.criterion(logits.float(), labels)   # the loss in float32 (outside autocast)
            acc.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            clock.step += 1
            n = len(labels)
            total_loss += loss.item() * n
            counts = counts + task.step_counts(logits.detach().float(), labels)
            seen += n
            self.recorder.emit(StepEnd(
                epoch=clock.epoch, step=clock.step, total_steps=clock.total_steps, train_loss=loss.item(),
                learning_rate=scheduler.get_last_lr()[0], elapsed_s=time.time() - clock.fit_started,
                eta_s=self._eta()))
        return total_loss / max(seen, 1), task.epoch_score(counts, seen)

    @torch.no_grad()
    def _validate(self, model, forward, loader) -> tuple[float, float, float]:
        """(loss, score, macro-F1) on the choose examples (the task's)."""
        return self.task.validation_scores(self._predict(model, forward, loader), self.examples.val_targets)

    @torch.no_grad()
    def _predict(self, model, forward, loader) -> np.ndarray:
        """The task's `outputs` of every example: log-probabilities for one label per example (logits up to
        a per-row constant: what temperature scaling needs), one logit per label for several."""
        was_training = model.training
        model.eval()
        rows = []
        for batch in loader:
            if self.should_stop():
                raise Stopped()
            outputs = self.task.outputs(forward(model, batch).float())
            rows.append(self.accelerator.gather_for_metrics(outputs).cpu())  # all shards, in order
        model.train(was_training)
        return torch.cat(rows).numpy() if rows else np.zeros((0, len(self.examples.classes)), dtype=np.float32)

    # -- the end ---------------------------------------------------------------------------------
    def _finish(self, train_plan: TrainPlan, best_epoch: int, choose_outputs: np.ndarray,
                report_outputs: np.ndarray) -> RunResult:
        """Choose on the choose examples, measure on the report examples, export, record."""
        config, ctx, task, examples = self.config, self.ctx, self.task, self.examples
        choose = Scored(choose_outputs, examples.val_targets, [str(x) for x in examples.val_items])
        report = Scored(report_outputs, examples.report_targets, [str(x) for x in examples.report_items])
        chosen = task.choose(choose, config)                   # on the choose examples only
        groups = (None if self.dataset.groups is None
                  else [self.dataset.groups[i] for i in self.roles.report])
        metrics = task.metrics(Evidence(choose=choose, report=report, chosen=chosen, classes=examples.classes,
                                        config=config, modality=self.dataset.modality, groups=groups,
                                        group_column=self.dataset.group_column, features=ctx.features))
        probe_fit = ctx.records.get("probe_fit")
        metrics.update({
            "n_train": len(examples.train_items), "best_epoch": best_epoch, "epochs_run": ctx.clock.epoch,
            "strategy": config.strategy, "model_id": config.model_id, "random_init": config.random_init,
            "trainable_params": train_plan.trainable_params, "total_params": train_plan.total_params,
            "train_seconds": round(time.time() - ctx.clock.fit_started, 2),
            "evaluation": task.evaluation_record(self.roles), **task.run_fields(),
            **({"probe_fit": probe_fit} if probe_fit else {}), **self.extra_metrics,
        })
        model = self.accelerator.unwrap_model(train_plan.model)
        run = RunFolder(self.run_dir)
        familiarity = familiarity_reference(ctx, metrics)   # "unlike your training data" reference, or None
        if self.accelerator.is_main_process:
            if task.keeps_mistake_images and self.dataset.modality == "image":
                keep_mistake_images(metrics["mistakes"], run, self.window)
            task.write_predictions(run.predictions_csv, report, chosen)
            export_model(ctx.loaded, model, run, config=config, data_summary=self._data_summary(),
                         metrics=metrics, task=task, chosen=chosen, familiarity=familiarity)
            run.write_metrics(metrics)
        self.accelerator.wait_for_everyone()
        self.recorder.emit(RunFinished(
            run_id=self.run_dir.name, best_epoch=best_epoch, accuracy=metrics["accuracy"],
            macro_f1=metrics["macro_f1"], n_val=metrics["n_val"], elapsed_s=time.time() - self.recorder.started,
            run_dir=str(self.run_dir)))
        self.recorder.status(RunState.FINISHED)
        return RunResult(self.run_dir.name, self.run_dir, RunState.FINISHED, metrics)
