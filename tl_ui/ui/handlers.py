"""Event handlers of the wizard: each turns one user action into component updates.

Every handler catches its own exceptions: a person sees a plain sentence in the page, never a
traceback or a generic "Error" toast (unexpected errors are logged on the server).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import gradio as gr

from tl_ui.runner import QueueFull, new_run_id
from tl_ui.ui import data as data_step
from tl_ui.ui import model as model_step
from tl_ui.ui import results as results_step
from tl_ui.ui import strategy as strategy_step
from tl_ui.ui import train as train_step
from tl_ui.ui.helpers import error_md, user_message
from tl_ui.ui.state import SessionState

log = logging.getLogger(__name__)

NO_DATA_MESSAGE = ("Load a dataset first: upload one on step 2 · Data, or use a sample there "
                   "(“Use the sample images” or “Use the sample texts”).")
SAMPLE_NAMES = {"image": "the sample images (handwritten digits)", "text": "the sample texts (movie reviews)"}


class Handlers:
    def __init__(self, ctx):
        self.ctx = ctx
        self.c: dict = {}   # the page's components by key, set by build_app after layout

    @property
    def offline(self) -> bool:
        return self.ctx.settings.offline

    # -- page load ------------------------------------------------------------------------------
    def on_load(self, state: SessionState, request: gr.Request):
        """Fill 'Previous runs' and pick up a job this owner still has going (e.g. a reopened tab)."""
        owner = self.ctx.owner(request)
        runs = gr.update(choices=results_step.run_choices(self.ctx, owner))
        job = self.ctx.runner.get(state.job_id, owner.id) if state.job_id else None
        job = job or self.ctx.runner.active_job(owner.id)
        if job is not None:
            state.job_id = job.id
            state.plot_x_lim = None  # a new page: its plots have no x range yet
            return (state, runs, *train_step.view_outputs(job, self.ctx.runner, state))
        return (state, runs, *[gr.skip()] * len(train_step.OUTPUT_KEYS))

    # -- step 1 -----------------------------------------------------------------------------------
    def on_model_change(self, choice, hub_id, state: SessionState):
        return model_step.model_info_md(choice, hub_id, state.modality)

    # -- step 2 -----------------------------------------------------------------------------------
    def on_upload(self, file_path, text_col, label_col, model_choice, state: SessionState, request: gr.Request):
        if not file_path:
            return (state, *[gr.skip()] * (len(data_step.OUTPUT_KEYS) - 1))
        owner = self.ctx.owner(request)
        name = Path(str(file_path)).name
        state.columns = _columns(text_col, label_col)
        outcome = data_step.load_into_workspace(self.ctx, owner, Path(file_path), name,
                                                state.columns["text_column"], state.columns["label_column"])
        return data_step.apply_outcome(self.ctx, owner, state, outcome, model_choice)

    def on_reload(self, text_col, label_col, model_choice, state: SessionState, request: gr.Request):
        """Read the last upload again with the column names the user typed."""
        path, name = (state.pending_path, state.pending_name) if state.pending_path else \
            (state.data_path, state.data_name)
        if not path or not Path(path).exists():
            return (state, error_md("Upload a file first."), *[gr.skip()] * (len(data_step.OUTPUT_KEYS) - 2))
        owner = self.ctx.owner(request)
        state.columns = _columns(text_col, label_col)
        outcome = data_step.load_into_workspace(self.ctx, owner, Path(path), name,
                                                state.columns["text_column"], state.columns["label_column"],
                                                copy=False)
        if outcome.error and not outcome.data_path:
            outcome.data_path = path
        return data_step.apply_outcome(self.ctx, owner, state, outcome, model_choice)

    def sample_loader(self, modality: str):
        def load_sample(model_choice, state: SessionState, request: gr.Request):
            owner = self.ctx.owner(request)
            outcome = self._load_sample(owner, modality)
            state.columns = {}
            return data_step.apply_outcome(self.ctx, owner, state, outcome, model_choice)
        load_sample.__name__ = f"load_sample_{modality}"
        return load_sample

    def _load_sample(self, owner, modality: str):
        try:
            from tl_ui.data import sample_dataset_path

            path = sample_dataset_path(modality)
        except Exception as exc:
            return data_step.LoadOutcome(error=user_message(exc, "finding the sample dataset"))
        name = SAMPLE_NAMES[modality]
        return data_step.load_into_workspace(self.ctx, owner, path, name, copy=False)

    # -- step 3 -----------------------------------------------------------------------------------
    def on_strategy_change(self, strategy):
        epochs, lr = strategy_step.defaults_for(strategy)
        return epochs, lr

    def form(self, data: dict) -> tuple[str, str, dict, SessionState]:
        """(model id, strategy, advanced settings, state) from a set-of-components input dict."""
        c = self.c
        advanced = {key: data.get(c[key]) for key in strategy_step.ADVANCED_KEYS}
        model_id = model_step.chosen_model_id(data.get(c["model_choice"]), data.get(c["hub_id"]))
        return model_id, data.get(c["strategy_choice"]), advanced, data[c["session"]]

    def strategy_info(self, data: dict):
        model_id, strategy, advanced, state = self.form(data)
        return strategy_step.strategy_info_md(self.ctx, model_id, strategy, state, advanced)

    # -- step 4 -----------------------------------------------------------------------------------
    def start(self, data: dict, request: gr.Request):
        model_id, strategy, advanced, state = self.form(data)
        owner = self.ctx.owner(request)
        runner = self.ctx.runner
        current = runner.get(state.job_id, owner.id) if state.job_id else None
        if current is not None and not current.done:
            return (state, *train_step.view_outputs(current, runner, state))
        if state.dataset is None:  # never silently train on a sample the user did not choose
            return (state, *train_step.cannot_start(NO_DATA_MESSAGE))
        try:
            job = self.submit(owner, state, model_id, strategy, advanced)
        except Exception as exc:
            return (state, *train_step.cannot_start(user_message(exc, "starting the run")))
        state.job_id = job.id
        return (state, *train_step.view_outputs(job, runner, state))

    def submit(self, owner, state: SessionState, model_id: str, strategy: str, advanced: dict,
               dataset=None, data_path: Optional[str] = None):
        """Validate and queue a run for `owner` (used by the page and the API). Raises user errors."""
        from tl_ui.catalog import get_model

        if dataset is None:
            if state.dataset is None:
                raise _UserError(NO_DATA_MESSAGE)
            dataset, data_path = state.dataset, state.data_path
        entry = get_model(model_id, dataset.modality)
        if entry.modality != dataset.modality:
            kind = "images" if dataset.modality == "image" else "texts"
            raise _UserError(
                f"The model '{entry.display_name}' reads {'images' if entry.modality == 'image' else 'texts'}, "
                f"but your data are {kind}. Pick a model for {kind} in step 1.")
        if self.offline and not entry.offline:
            raise _UserError(f"Offline mode is on and '{entry.display_name}' is not installed here. "
                             "Pick a model with 'Offline: yes' in step 1.")
        config = strategy_step.make_config(model_id, data_path or "", strategy, advanced, state.columns)
        run_id = new_run_id()
        run_dir = self.ctx.workspace.new_run_dir(owner, run_id)
        try:
            return self.ctx.runner.submit(config, run_dir, owner=owner.id, dataset=dataset, run_id=run_id,
                                          label=f"{model_id}/{config.strategy}")
        except QueueFull as exc:
            raise _UserError(str(exc)) from None

    def stop(self, state: SessionState, request: gr.Request):
        owner = self.ctx.owner(request)
        if state.job_id and self.ctx.runner.stop(state.job_id, owner.id):
            return "**Stopping…** the run ends after its current step."
        return "There is no run to stop."

    def tick(self, state: SessionState, request: gr.Request):
        owner = self.ctx.owner(request)
        job = self.ctx.runner.get(state.job_id, owner.id) if state.job_id else None
        return train_step.view_outputs(job, self.ctx.runner, state)

    # -- step 5 -----------------------------------------------------------------------------------
    def show_run(self, run_id, state: SessionState, request: gr.Request):
        """Results for one of the caller's runs, plus a refreshed 'Previous runs' list."""
        owner = self.ctx.owner(request)
        choices = results_step.run_choices(self.ctx, owner)
        if not run_id:
            return (state, gr.update(choices=choices), *[gr.skip()] * len(results_step.OUTPUT_KEYS))
        run_dir = self.ctx.workspace.run_dir(owner, run_id)
        if run_dir is None:
            return (state, gr.update(choices=choices),
                    *results_step.empty_outputs("This run does not exist or is not yours."))
        try:
            outputs = results_step.results_outputs(self.ctx, owner, run_dir)
        except Exception as exc:
            outputs = results_step.empty_outputs(error_md(user_message(exc, "showing the results")))
        state.shown_run = run_id
        return (state, gr.update(choices=choices, value=run_id), *outputs)

    def refresh_runs(self, request: gr.Request):
        owner = self.ctx.owner(request)
        return gr.update(choices=results_step.run_choices(self.ctx, owner))

    def try_it(self, image, text, state: SessionState, request: gr.Request):
        owner = self.ctx.owner(request)
        if not state.shown_run:
            return None, error_md("Train a model or pick a previous run first.")
        try:
            probs = self.predict(owner, state.shown_run, image, text)
        except Exception as exc:
            return None, error_md(user_message(exc, "predicting"))
        return results_step.label_value(probs), ""

    def predict(self, owner, run_id: str, image=None, text=None) -> dict[str, float]:
        """Probabilities for one input with one of `owner`'s runs (raises user errors)."""
        run_dir = self.ctx.workspace.run_dir(owner, run_id or "")
        if run_dir is None:
            raise _UserError(f"There is no run '{run_id}' for you. Check the run id (see 'Previous runs').")
        if not (run_dir / "model" / "config.json").exists():
            raise _UserError("This run has no finished model to predict with. Pick a run that finished.")
        predictor = self.ctx.predictor(run_dir)
        if predictor.modality == "image":
            if not image:
                raise _UserError("Upload an image to classify.")
            return predictor.predict([str(image)])[0]
        if not text or not str(text).strip():
            raise _UserError("Type some text to classify.")
        return predictor.predict([str(text)])[0]


def _columns(text_col, label_col) -> dict:
    return {"text_column": (text_col or "").strip(), "label_column": (label_col or "").strip()}


class _UserError(ValueError):
    """A plain-words problem raised by a handler itself (shown verbatim)."""


_UserError.__module__ = "tl_ui.ui.handlers"
