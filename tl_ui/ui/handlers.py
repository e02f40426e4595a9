"""Event handlers of the wizard: each turns one user action into a call of the service (`self.lab`)
and returns `{component: value}` for what changes (a component left out keeps its value).

Each handler is declared with `@outputs(...)`: the keys of the components it may set (the keys of
the dict the steps' `build()` return). The wiring in tl_ui/app/webapp.py reads them, so the outputs
of an event and what its handler returns cannot drift apart.

Every handler catches its own exceptions: a person sees a plain sentence in the page, never a
traceback or a generic "Error" toast (unexpected errors are logged on the server).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Optional

import gradio as gr

from tl_ui.service.errors import NO_DATA_MESSAGE, UserError
from tl_ui.ui import advisor_view, compare_view, data_map_view
from tl_ui.ui import data as data_step
from tl_ui.ui import model as model_step
from tl_ui.ui import results_view
from tl_ui.ui import strategy as strategy_step
from tl_ui.ui import train as train_step
from tl_ui.ui.formatting import error_md, user_message
from tl_ui.ui.state import SessionState

log = logging.getLogger(__name__)

DATA_KEYS = ("session", "data_error", "data_summary", "class_counts", "data_gallery", "data_table",
             "dicom_window", "model_shelf", "model_choice", "data_upload", "strategy_choice",
             "operating_point_box", "positive_class",
             *advisor_view.KEYS, *data_map_view.KEYS)


class KeysAsComponents(dict):
    def __missing__(self, key: str) -> str:
        return key


def outputs(*keys: str):
    """Declare the components a handler may set; its {key: value} answer becomes {component: value}."""
    keys = tuple(k for group in keys for k in ((group,) if isinstance(group, str) else group))

    def declare(fn):
        @functools.wraps(fn)   # keeps the signature: Gradio injects gr.Request by it
        def handler(self, *args, **kwargs):
            values = fn(self, *args, **kwargs)
            unknown = set(values) - set(keys)
            if unknown:
                raise KeyError(f"{fn.__name__} returned undeclared outputs {sorted(unknown)}")
            if not values:   # Gradio reads an empty dict as one value: say "nothing changes" instead
                values = {keys[0]: gr.skip()}
            return {self.c[key]: value for key, value in values.items()}

        handler.output_keys = keys
        return handler
    return declare


class Handlers:
    """Each method turns one page event into a call of the service (`self.lab`) and updates."""

    def __init__(self, lab):
        self.lab = lab
        # the page's components by key, set by build_app after layout; until then each key stands
        # for itself, so a handler called without a page (a test) answers {key: value}
        self.c: dict = KeysAsComponents()

    def output_components(self, handler) -> list:
        return [self.c[key] for key in handler.output_keys]

    # -- page load ------------------------------------------------------------------------------
    @outputs("session", "owner_token", results_view.RUNS_KEYS, train_step.VIEW_KEYS)
    def on_load(self, state: SessionState, stored_token, request: gr.Request):
        """Bind this page to its owner (the token the page keeps, else the cookie's, else a new one),
        fill the run lists and pick up a job the owner still has going (e.g. a reopened tab)."""
        owner, token = self.lab.bind_page(request, stored_token or None)
        values = {"session": state, "owner_token": token, **results_view.runs_overview(self.lab, owner)}
        job = self.lab.job(owner, state.job_id) or self.lab.active_job(owner)
        if job is not None:
            state.job_id = job.id
            state.plot_x_lim = state.plot_sent = None  # a new page: its plots have no x range and no rows yet
            values.update(train_step.view_outputs(job, self.lab.runner, state))
        return values

    # -- step 1 -----------------------------------------------------------------------------------
    @outputs("model_info")
    def on_model_change(self, choice, hub_id, state: SessionState):
        return {"model_info": model_step.model_info_md(choice, hub_id, state.modality)}

    # -- step 2 -----------------------------------------------------------------------------------
    @outputs(DATA_KEYS)
    def on_upload(self, file_path, text_col, label_col, group_col, model_choice, state: SessionState,
                  request: gr.Request, label_cols: str = "", separator: str = "auto"):
        if not file_path:
            return {"session": state}
        owner = self.lab.owner(request)
        state.columns = _columns(text_col, label_col, group_col, label_cols, separator)
        outcome = self.lab.load_data(owner, Path(file_path), Path(str(file_path)).name, **state.columns)
        return self._data_loaded(owner, state, outcome, model_choice)

    @outputs(DATA_KEYS)
    def on_reload(self, text_col, label_col, group_col, model_choice, state: SessionState, request: gr.Request,
                  label_cols: str = "", separator: str = "auto"):
        """Read the last upload again with the column names the user typed."""
        path, name = (state.pending_path, state.pending_name) if state.pending_path else \
            (state.data_path, state.data_name)
        if not path or not Path(path).exists():
            return {"session": state, "data_error": error_md("Upload a file first.")}
        owner = self.lab.owner(request)
        state.columns = _columns(text_col, label_col, group_col, label_cols, separator)
        outcome = self.lab.load_data(owner, Path(path), name, **state.columns, copy=False)
        if outcome.error and not outcome.data_path:
            outcome.data_path = path
        return self._data_loaded(owner, state, outcome, model_choice)

    def sample_loader(self, modality: str):
        @outputs(DATA_KEYS)
        def load_sample(self, model_choice, state: SessionState, request: gr.Request):
            owner = self.lab.owner(request)
            outcome = self.lab.load_sample(owner, modality)
            state.columns = {}
            return self._data_loaded(owner, state, outcome, model_choice)

        load_sample.__name__ = f"load_sample_{modality}"
        return load_sample.__get__(self)

    def _data_loaded(self, owner, state: SessionState, outcome, model_choice) -> dict:
        """After any load attempt: the data step, the model shelf filtered to the data's kind, and the
        strategy that suits it. The upload box is emptied each time, so the next file can be dropped
        straight away (the summary names what is loaded)."""
        from tl_ui.core.config import default_strategy

        if outcome.error:
            # keep whatever was loaded before (and say so); remember the file for "Reload with these columns"
            state.pending_path, state.pending_name = outcome.data_path, outcome.name
            message = outcome.error
            if state.dataset is not None:
                message += (f" Nothing changed: Transfer Lab is still using {state.data_name} "
                            f"({state.n_examples:,} {'images' if state.modality == 'image' else 'texts'}).")
            return {"session": state, "data_error": error_md(message), "data_upload": None}
        ds = outcome.dataset
        previous_modality = state.modality
        state.dataset, state.data_path, state.data_name = ds, outcome.data_path, outcome.name
        state.pending_path, state.pending_name = "", ""
        shelf, choice_update, note = model_step.filtered_updates(ds.modality, model_choice, self.lab.settings.offline)
        # a new dataset starts from each file's own window (the dropdown is reset to it)
        gallery, table = data_step.preview_updates(self.lab, owner, ds)
        dicom = data_step.is_dicom(ds)
        notes = ([data_step.dicom_note(self.lab.settings.session_ttl_hours)] if dicom else []) + ([note] if note else [])
        values = {"session": state, "data_error": "",
                  "data_summary": data_step.summary_md(ds, outcome.name, notes),
                  "class_counts": gr.update(value=data_step.counts_df(ds), visible=True),
                  "data_gallery": gallery, "data_table": table, "dicom_window": data_step.window_update(dicom),
                  "model_shelf": shelf,
                  "model_choice": choice_update, "data_upload": None, **advisor_view.cleared(),
                  **data_map_view.cleared(), **strategy_step.positive_class_update(ds)}
        if ds.modality != previous_modality or ds.modality == "text":  # texts: by their number (benchmark)
            values["strategy_choice"] = default_strategy(ds.modality, len(ds))
        return values

    @outputs(advisor_view.KEYS, data_map_view.KEYS, "model_choice")
    def advise(self, state: SessionState, window, image_size, request: gr.Request, progress=gr.Progress()):
        """Rank the offline models on the loaded data (in a worker process), preselect the best, and draw
        the map of the data in the best model's embeddings."""
        if state.dataset is None:
            return {"advisor_note": error_md(NO_DATA_MESSAGE)}
        owner = self.lab.owner(request)
        options = {"dicom_window": data_step.window_option(window), "image_size": image_size}
        try:
            rows, data_map = self.lab.advise_and_map(owner, state.dataset, options, on_progress=lambda i, n, message:
                                                     progress((i - 1) / max(n, 1), desc=f"Model {i} of {n}: {message}"))
        except UserError as exc:
            return {"advisor_note": error_md(str(exc))}
        except Exception as exc:
            return {"advisor_note": error_md(user_message(exc, "ranking the models"))}
        choices = [c[1] for c in model_step.shelf_choices(state.modality, self.lab.settings.offline)]
        thumbs = data_step.problem_thumbnails(self.lab, owner, data_map, state.modality,
                                             data_step.window_option(window))
        return {**advisor_view.outcome(rows, choices),
                **data_map_view.outcome(data_map, (data_map or {}).get("display_name", ""), state.modality, thumbs)}

    @outputs("data_gallery", "data_error")
    def on_dicom_window(self, window, state: SessionState, request: gr.Request):
        """Draw the gallery's previews again with the chosen DICOM display window."""
        if state.dataset is None or state.modality != "image":
            return {}
        try:
            gallery, _ = data_step.preview_updates(self.lab, self.lab.owner(request), state.dataset,
                                                   window=data_step.window_option(window))
        except Exception as exc:
            return {"data_error": error_md(user_message(exc, "drawing the previews"))}
        return {"data_gallery": gallery}

    # -- step 3 -----------------------------------------------------------------------------------
    @outputs("epochs", "learning_rate")
    def on_strategy_change(self, strategy):
        epochs, lr = strategy_step.defaults_for(strategy)
        return {"epochs": epochs, "learning_rate": lr}

    @outputs("strategy_choice")
    def on_budget_change(self, minutes):
        """The 'auto' choice's label names the budget."""
        return {"strategy_choice": gr.update(choices=strategy_step.strategy_choices(minutes))}

    def form_inputs(self) -> set:
        """The components `form` reads (a set: Gradio passes them as one dict)."""
        keys = ["model_choice", "hub_id", "strategy_choice", "dicom_window", "session", *strategy_step.OPTION_KEYS]
        return {self.c[k] for k in keys}

    def form(self, data: dict) -> tuple[str, dict, SessionState]:
        """(model id, options, state): the form's values as the service's options, keyed by RunConfig
        field names (the one translator, RunConfig.from_options, reads them)."""
        c = self.c
        options = {key: data.get(c[key]) for key in strategy_step.OPTION_KEYS}
        options["strategy"] = data.get(c["strategy_choice"])
        if options["strategy"] != "auto":   # the budget is the search's alone
            options["budget_minutes"] = None
        strategy_step.operating_point_options(options)
        # "header" (each file's own window) is RunConfig's default; the dropdown is reset to it for
        # every new dataset, so data that is not DICOM never carries a window
        options["dicom_window"] = data_step.window_option(data.get(c["dicom_window"]))
        state = data[c["session"]]
        options.update({k: v for k, v in state.columns.items() if v})
        model_id = model_step.chosen_model_id(data.get(c["model_choice"]), data.get(c["hub_id"]))
        return model_id, options, state

    @outputs("strategy_info")
    def strategy_info(self, data: dict):
        """Wired with `preprocess=False` (tl_ui/app/webapp.py): an event sent while a data load was switching
        the model shelf (images after texts) still carries the old model, which Gradio's own check of the
        radio would refuse with a generic error toast. Every other input gets its component's own check
        here; the model is the one the data step is switching to."""
        try:
            data = {comp: value if comp is self.c["model_choice"] or getattr(comp, "stateful", False)
                    else comp.preprocess(value) for comp, value in data.items()}
        except gr.Error as exc:   # e.g. a number beyond its field's bounds
            return {"strategy_info": error_md(str(exc))}
        model_id, options, state = self.form(data)
        if not (data.get(self.c["hub_id"]) or "").strip():
            model_id = self._model_for_data(model_id, state)
        return {"strategy_info": strategy_step.strategy_info_md(self.lab, model_id, options, state)}

    def _model_for_data(self, model_id: str, state: SessionState) -> str:
        """The shelf model the page shows for the loaded data's kind (model_step.filtered_updates's choice)."""
        if state.modality is None:
            return model_id
        _, choice, _ = model_step.filtered_updates(state.modality, model_id, self.lab.settings.offline)
        return choice.get("value") or model_id

    # -- step 4 -----------------------------------------------------------------------------------
    @outputs("session", train_step.VIEW_KEYS)
    def start(self, data: dict, request: gr.Request):
        model_id, options, state = self.form(data)
        owner = self.lab.owner(request)
        current = self.lab.job(owner, state.job_id)
        if current is not None and not current.done:
            return {"session": state, **train_step.view_outputs(current, self.lab.runner, state)}
        if state.dataset is None:  # never silently train on a sample the user did not choose
            return {"session": state, **train_step.cannot_start(NO_DATA_MESSAGE)}
        try:
            job = self.lab.start_run(owner, state.dataset, state.data_path, model_id, options,
                                     address=client_address(request))
        except Exception as exc:
            return {"session": state, **train_step.cannot_start(user_message(exc, "starting the run"))}
        state.job_id = job.id
        return {"session": state, **train_step.view_outputs(job, self.lab.runner, state)}

    @outputs("train_status", "train_announce", "timer")
    def stop(self, state: SessionState, request: gr.Request):
        owner = self.lab.owner(request)
        if state.job_id and self.lab.stop_run(owner, state.job_id):
            # the page keeps polling until the run has ended: its next tick replaces "Stopping…" with the outcome
            # (once, under load, the page stayed on "Stopping…" after the run had ended: no tick reached it)
            return {"train_status": "**Stopping…** the run ends after its current step.",
                    "train_announce": "Stopping: the run ends after its current step.", "timer": gr.Timer(active=True)}
        return {"train_status": "There is no run to stop.", "train_announce": "There is no run to stop."}

    @outputs(train_step.VIEW_KEYS)
    def tick(self, state: SessionState, request: gr.Request):
        owner = self.lab.owner(request)
        return train_step.view_outputs(self.lab.job(owner, state.job_id), self.lab.runner, state)

    # -- step 5 -----------------------------------------------------------------------------------
    @outputs("session", results_view.SHOW_KEYS, results_view.RUNS_KEYS, results_view.COMPARE_KEYS)
    def show_run(self, run_id, state: SessionState, request: gr.Request):
        """Results for one of the caller's runs, with refreshed run lists."""
        owner = self.lab.owner(request)
        if not run_id:
            return {"session": state, **results_view.runs_overview(self.lab, owner)}
        try:
            run = self.lab.run(owner, run_id)
        except UserError:
            return {"session": state, **results_view.runs_overview(self.lab, owner),
                    **results_view.empty("This run does not exist or is not yours.")}
        try:
            values = results_view.show_with_runs(self.lab, owner, run)
        except Exception as exc:
            values = {**results_view.runs_overview(self.lab, owner, shown=run_id),
                      **results_view.empty(error_md(user_message(exc, "showing the results")))}
        state.shown_run = run_id
        self.lab.warm_predictor(owner, run_id)   # try-it answers from a model already in memory
        return {"session": state, **values}

    @outputs("session", "tabs", "continue_note", train_step.VIEW_KEYS)
    def continue_run(self, more_epochs, state: SessionState, request: gr.Request):
        """'Train more epochs' on the run shown: a new run from its best weights, followed on step 4."""
        owner = self.lab.owner(request)
        current = self.lab.job(owner, state.job_id)
        if current is not None and not current.done:
            return {"continue_note": "A run is still training: wait for it to finish, or stop it on step 4."}
        if not state.shown_run:
            return {"continue_note": "Pick a finished run in 'Previous runs' first."}
        try:
            job = self.lab.continue_run(owner, state.shown_run, more_epochs, address=client_address(request))
        except Exception as exc:
            return {"continue_note": error_md(user_message(exc, "continuing the run"))}
        state.job_id = job.id
        return {"session": state, "tabs": gr.Tabs(selected="train"),
                "continue_note": f"Started run {job.id}: {int(more_epochs)} more epochs from run {state.shown_run}.",
                **train_step.view_outputs(job, self.lab.runner, state)}

    @outputs(results_view.MISTAKES_WHY_KEYS)
    def explain_mistakes(self, state: SessionState, request: gr.Request):
        """Grad-CAM overlays of the shown run's most confident mistakes."""
        from tl_ui.service.mistakes import mistake_overlays

        if not state.shown_run:
            return {"mistakes_why_note": "Pick a finished run in 'Previous runs' first."}
        try:
            overlays = mistake_overlays(self.lab, self.lab.owner(request), state.shown_run)
        except Exception as exc:
            return {"mistakes_why_note": error_md(user_message(exc, "drawing what the model looked at"))}
        return results_view.mistakes_why(overlays)

    @outputs(results_view.opv.SLIDE_KEYS)
    def operating_point_slide(self, name, threshold, state: SessionState, request: gr.Request):
        """The threshold slider (or the class picker) of the Operating point panel: its readout, live."""
        if not state.shown_run:
            return {}
        try:
            return results_view.operating_point_slide(self.lab, self.lab.owner(request), state.shown_run, name,
                                                      threshold)
        except Exception as exc:
            return {"op_readout": error_md(user_message(exc, "measuring at that threshold"))}

    @outputs(results_view.REPORT_KEYS)
    def make_report(self, state: SessionState, request: gr.Request):
        """The shown run's study report (HTML and PDF), written into its folder, offered as owner-only files."""
        if not state.shown_run:
            return {"report_note": "Pick a finished run in 'Previous runs' first."}
        try:
            return results_view.report_downloads(self.lab, self.lab.owner(request), state.shown_run)
        except Exception as exc:
            return {**results_view.REPORT_CLEARED, "report_note": error_md(user_message(exc, "writing the report"))}

    @outputs("download_onnx", "share_note")
    def export_onnx(self, state: SessionState, request: gr.Request, progress=gr.Progress()):
        """The shown run as ONNX (fp32 + int8) in its folder, made in a worker; the zip and int8's sentence."""
        if not state.shown_run:
            return {"share_note": "Pick a finished run in 'Previous runs' first."}
        try:
            done = self.lab.export_onnx(self.lab.owner(request), state.shown_run, int8=True,
                                        on_progress=lambda d, t, m: progress(d / max(t, 1), desc=m))
        except Exception as exc:
            return {"download_onnx": gr.DownloadButton(value=None, interactive=False),
                    "share_note": error_md(user_message(exc, "exporting the model as ONNX"))}
        return {"download_onnx": gr.DownloadButton(value=done["zip"], interactive=True),
                "share_note": results_view.onnx_note(done.get("report") or {})}

    @outputs("download_space", "share_note")
    def share_space(self, state: SessionState, request: gr.Request, progress=gr.Progress()):
        """A Gradio Space folder for the shown run, made in a worker; offered as a zip."""
        if not state.shown_run:
            return {"share_note": "Pick a finished run in 'Previous runs' first."}
        try:
            done = self.lab.share_space(self.lab.owner(request), state.shown_run,
                                        on_progress=lambda d, t, m: progress(d / max(t, 1), desc=m))
        except Exception as exc:
            return {"download_space": gr.DownloadButton(value=None, interactive=False),
                    "share_note": error_md(user_message(exc, "making the Space folder"))}
        return {"download_space": gr.DownloadButton(value=done["zip"], interactive=True),
                "share_note": "The Space folder is ready: unzip it and run `pip install -r requirements.txt` and "
                              "`python app.py`, or upload it as a Hugging Face Space (sdk gradio)."}

    @outputs(results_view.RUNS_KEYS)
    def refresh_runs(self, request: gr.Request):
        return results_view.runs_overview(self.lab, self.lab.owner(request))

    @outputs(results_view.COMPARE_KEYS)
    def compare_runs(self, ticked, request: gr.Request):
        try:
            return results_view.compare(self.lab, self.lab.owner(request), ticked)
        except Exception as exc:
            return {"compare_plot": compare_view.empty_overlay(),
                    "compare_diff": error_md(user_message(exc, "comparing the runs"))}

    @outputs("compare_plot")
    def compare_colours(self, ticked, request: gr.Request):
        """Chained after every update of the overlay's rows (see results_view.compare_colours)."""
        try:
            return results_view.compare_colours(self.lab, self.lab.owner(request), ticked)
        except Exception:
            log.exception("colouring the compared runs failed")
            return {}

    @outputs("scratch_comparison", "results_timer", results_view.RUNS_KEYS, results_view.COMPARE_KEYS)
    def scratch_tick(self, state: SessionState, request: gr.Request):
        """While the shown run's from-scratch companion trains: fill in the comparison once it ends."""
        if not state.shown_run:
            return {"results_timer": gr.Timer(active=False)}
        try:
            return results_view.scratch_update(self.lab, self.lab.owner(request), state.shown_run)
        except Exception as exc:
            return {"scratch_comparison": error_md(user_message(exc, "comparing with the scratch run")),
                    "results_timer": gr.Timer(active=False)}

    @outputs("try_output", "try_set", "try_error", *results_view.WHY_CLEARED)
    def try_it(self, image, file, text, state: SessionState, request: gr.Request):
        owner = self.lab.owner(request)
        image = file or image   # a DICOM / TIFF file given beside the picture box wins
        no_answer = gr.update(value=None, visible=False)   # an empty gr.Label: see tl_ui/ui/results.py
        if not state.shown_run:
            return {"try_output": no_answer, "try_set": "",
                    "try_error": error_md("Train a model or pick a previous run first.")}
        try:
            answer = self.lab.predict(owner, state.shown_run, image, text)
        except Exception as exc:
            return {"try_output": no_answer, "try_set": "", "try_error": error_md(user_message(exc, "predicting"))}
        probabilities = {str(k): float(v) for k, v in answer["probabilities"].items()}
        return {"try_output": gr.update(value=probabilities, visible=True),
                "try_set": results_view.set_md(answer), "try_error": "",
                **results_view.WHY_CLEARED}   # an earlier "Why this answer?" was about another input


    @outputs("try_why_note", "try_why", "try_error")
    def explain_it(self, image, file, text, state: SessionState, request: gr.Request):
        cleared = {**results_view.WHY_CLEARED, "try_error": ""}
        if not state.shown_run:
            return {**cleared, "try_error": error_md("Train a model or pick a previous run first.")}
        try:
            why = self.lab.explain(self.lab.owner(request), state.shown_run, file or image, text)
        except Exception as exc:
            return {**cleared, "try_error": error_md(user_message(exc, "explaining the answer"))}
        return {**cleared, "try_why_note": results_view.why_md(why), "try_why": results_view.why_html(why)}


def client_address(request) -> Optional[str]:
    """The caller's network address (counts toward the per-address cap of callers without login)."""
    return getattr(getattr(request, "client", None), "host", None)


def _columns(text_col, label_col, group_col, label_cols=None, separator=None) -> dict:
    return {"text_column": (text_col or "").strip(), "label_column": (label_col or "").strip(),
            "group_column": (group_col or "").strip(), "label_columns": (label_cols or "").strip(),
            "label_separator": "" if separator in (None, "", "auto") else str(separator)}
