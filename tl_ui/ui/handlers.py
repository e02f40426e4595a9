"""Event handlers of the wizard: each turns one user action into component updates.

Every handler catches its own exceptions: a person sees a plain sentence in the page, never a
traceback or a generic "Error" toast (unexpected errors are logged on the server).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import gradio as gr

from tl_ui.service.lab import NO_DATA_MESSAGE, UserError
from tl_ui.ui import data as data_step
from tl_ui.ui import model as model_step
from tl_ui.ui import results as results_step
from tl_ui.ui import strategy as strategy_step
from tl_ui.ui import train as train_step
from tl_ui.ui.helpers import error_md, user_message
from tl_ui.ui.state import SessionState

log = logging.getLogger(__name__)



class Handlers:
    """Each method turns one page event into a call of the service (`self.lab`) and updates."""

    def __init__(self, lab):
        self.lab = lab
        self.c: dict = {}   # the page's components by key, set by build_app after layout

    # -- page load ------------------------------------------------------------------------------
    def on_load(self, state: SessionState, request: gr.Request):
        """Fill 'Previous runs' and pick up a job this owner still has going (e.g. a reopened tab)."""
        owner = self.lab.owner(request)
        runs = gr.update(choices=results_step.run_choices(self.lab, owner))
        job = self.lab.job(owner, state.job_id) or self.lab.active_job(owner)
        if job is not None:
            state.job_id = job.id
            state.plot_x_lim = None  # a new page: its plots have no x range yet
            return (state, runs, *train_step.view_outputs(job, self.lab.runner, state))
        return (state, runs, *[gr.skip()] * len(train_step.OUTPUT_KEYS))

    # -- step 1 -----------------------------------------------------------------------------------
    def on_model_change(self, choice, hub_id, state: SessionState):
        return model_step.model_info_md(choice, hub_id, state.modality)

    # -- step 2 -----------------------------------------------------------------------------------
    def on_upload(self, file_path, text_col, label_col, model_choice, state: SessionState, request: gr.Request):
        if not file_path:
            return (state, *[gr.skip()] * (len(data_step.OUTPUT_KEYS) - 1))
        owner = self.lab.owner(request)
        name = Path(str(file_path)).name
        state.columns = _columns(text_col, label_col)
        outcome = self.lab.load_data(owner, Path(file_path), name, **state.columns)
        return data_step.apply_outcome(self.lab, owner, state, outcome, model_choice)

    def on_reload(self, text_col, label_col, model_choice, state: SessionState, request: gr.Request):
        """Read the last upload again with the column names the user typed."""
        path, name = (state.pending_path, state.pending_name) if state.pending_path else \
            (state.data_path, state.data_name)
        if not path or not Path(path).exists():
            return (state, error_md("Upload a file first."), *[gr.skip()] * (len(data_step.OUTPUT_KEYS) - 2))
        owner = self.lab.owner(request)
        state.columns = _columns(text_col, label_col)
        outcome = self.lab.load_data(owner, Path(path), name, **state.columns, copy=False)
        if outcome.error and not outcome.data_path:
            outcome.data_path = path
        return data_step.apply_outcome(self.lab, owner, state, outcome, model_choice)

    def sample_loader(self, modality: str):
        def load_sample(model_choice, state: SessionState, request: gr.Request):
            owner = self.lab.owner(request)
            outcome = self.lab.load_sample(owner, modality)
            state.columns = {}
            return data_step.apply_outcome(self.lab, owner, state, outcome, model_choice)
        load_sample.__name__ = f"load_sample_{modality}"
        return load_sample

    # -- step 3 -----------------------------------------------------------------------------------
    def on_strategy_change(self, strategy):
        epochs, lr = strategy_step.defaults_for(strategy)
        return epochs, lr

    def form(self, data: dict) -> tuple[str, dict, SessionState]:
        """(model id, options, state) from a set-of-components input dict: the form's values as
        the service's options (the one translator, RunConfig.from_options, reads them)."""
        c = self.c
        options = {key: data.get(c[key]) for key in strategy_step.ADVANCED_KEYS}
        options["strategy"] = data.get(c["strategy_choice"])
        state = data[c["session"]]
        options.update({k: v for k, v in state.columns.items() if v})
        model_id = model_step.chosen_model_id(data.get(c["model_choice"]), data.get(c["hub_id"]))
        return model_id, options, state

    def strategy_info(self, data: dict):
        model_id, options, state = self.form(data)
        return strategy_step.strategy_info_md(self.lab, model_id, options, state)

    # -- step 4 -----------------------------------------------------------------------------------
    def start(self, data: dict, request: gr.Request):
        model_id, options, state = self.form(data)
        owner = self.lab.owner(request)
        runner = self.lab.runner
        current = self.lab.job(owner, state.job_id)
        if current is not None and not current.done:
            return (state, *train_step.view_outputs(current, runner, state))
        if state.dataset is None:  # never silently train on a sample the user did not choose
            return (state, *train_step.cannot_start(NO_DATA_MESSAGE))
        try:
            job = self.lab.start_run(owner, state.dataset, state.data_path, model_id, options)
        except Exception as exc:
            return (state, *train_step.cannot_start(user_message(exc, "starting the run")))
        state.job_id = job.id
        return (state, *train_step.view_outputs(job, runner, state))

    def stop(self, state: SessionState, request: gr.Request):
        owner = self.lab.owner(request)
        if state.job_id and self.lab.stop_run(owner, state.job_id):
            return "**Stopping…** the run ends after its current step."
        return "There is no run to stop."

    def tick(self, state: SessionState, request: gr.Request):
        owner = self.lab.owner(request)
        return train_step.view_outputs(self.lab.job(owner, state.job_id), self.lab.runner, state)

    # -- step 5 -----------------------------------------------------------------------------------
    def show_run(self, run_id, state: SessionState, request: gr.Request):
        """Results for one of the caller's runs, plus a refreshed 'Previous runs' list."""
        owner = self.lab.owner(request)
        choices = results_step.run_choices(self.lab, owner)
        if not run_id:
            return (state, gr.update(choices=choices), *[gr.skip()] * len(results_step.OUTPUT_KEYS))
        try:
            run = self.lab.run(owner, run_id)
        except UserError:
            return (state, gr.update(choices=choices),
                    *results_step.empty_outputs("This run does not exist or is not yours."))
        try:
            outputs = results_step.results_outputs(self.lab, owner, run)
        except Exception as exc:
            outputs = results_step.empty_outputs(error_md(user_message(exc, "showing the results")))
        state.shown_run = run_id
        return (state, gr.update(choices=choices, value=run_id), *outputs)

    def refresh_runs(self, request: gr.Request):
        owner = self.lab.owner(request)
        return gr.update(choices=results_step.run_choices(self.lab, owner))

    def try_it(self, image, text, state: SessionState, request: gr.Request):
        owner = self.lab.owner(request)
        if not state.shown_run:
            return None, error_md("Train a model or pick a previous run first.")
        try:
            answer = self.lab.predict(owner, state.shown_run, image, text)
        except Exception as exc:
            return None, error_md(user_message(exc, "predicting"))
        return results_step.label_value(answer["probabilities"]), results_step.set_md(answer)


def _columns(text_col, label_col) -> dict:
    return {"text_column": (text_col or "").strip(), "label_column": (label_col or "").strip()}
