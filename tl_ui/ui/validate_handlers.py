"""Step 6's events: each turns one action into a call of the service (`lab.validate`, `lab.score_batch`, which
run in a worker of their own) and returns `{key: value}` through the same `@outputs` declaration as
tl_ui/ui/handlers.py. Stop sets the person's own flag, which the worker's request reads between batches
(Gradio's `cancels=` would end only the page's wait, not the worker)."""
from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from tl_ui.service.errors import UserError
from tl_ui.ui import validate_view
from tl_ui.ui.formatting import error_md, user_message
from tl_ui.ui.handlers import KeysAsComponents, outputs
from tl_ui.ui.validate import NO_RUN

VALIDATE_KEYS = ("validate_status", "validate_table", "validate_sentences", "validate_files")
BATCH_KEYS = ("batch_status", "batch_files")
RECAL_KEYS = ("recal_status", "recal_table", "recal_files")


class NewDataHandlers:
    def __init__(self, lab):
        self.lab = lab
        self.c: dict = KeysAsComponents()
        self._stops: dict[tuple[str, str], threading.Event] = {}   # (owner, "validate" | "batch") -> Stop pressed
        self._lock = threading.Lock()

    def output_components(self, handler) -> list:
        return [self.c[key] for key in handler.output_keys]

    def _stop_flag(self, owner_id: str, what: str) -> threading.Event:
        with self._lock:
            flag = self._stops[(owner_id, what)] = threading.Event()
            return flag

    @outputs("validate_run")
    def runs(self, current, request: gr.Request):
        """The person's finished runs that have a model, newest first."""
        owner = self.lab.owner(request)
        choices = [(info.label(), info.run_id) for info in self.lab.list_runs(owner) if info.has_model]
        ids = [run_id for _, run_id in choices]
        return {"validate_run": gr.Dropdown(choices=choices, value=current if current in ids else
                                            (ids[0] if ids else None))}

    @outputs(*VALIDATE_KEYS)
    def validate(self, run_id, upload, request: gr.Request, progress=gr.Progress()):
        if not run_id:
            return {"validate_status": error_md(NO_RUN)}
        if not upload:
            return {"validate_status": error_md("Upload the new labelled data first (a zip of class folders or a table).")}
        owner = self.lab.owner(request)
        stop = self._stop_flag(owner.id, "validate")
        try:
            report = self.lab.validate(owner, run_id, upload, Path(upload).name, should_stop=stop.is_set,
                                       on_progress=lambda done, total, message: progress(done / max(total, 1),
                                                                                         desc=message))
        except UserError as exc:
            return {"validate_status": error_md(str(exc)), "validate_table": "",
                    "validate_sentences": gr.Markdown("", visible=False),
                    "validate_files": gr.File(value=None, visible=False)}
        except Exception as exc:   # logged; a sentence for the person
            return {"validate_status": error_md(user_message(exc, "checking the model on the new data"))}
        files = [path for path in (report.get("files") or {}).values() if path]
        return {"validate_status": f"Checked on **{report['n']}** new examples of '{report.get('source') or 'the upload'}'.",
                "validate_table": validate_view.side_by_side_html(report),
                "validate_sentences": gr.Markdown(validate_view.sentences_md(report), visible=True),
                "validate_files": gr.File(value=files, visible=bool(files))}

    @outputs(*RECAL_KEYS)
    def recalibrate(self, run_id, upload, site, request: gr.Request, progress=gr.Progress()):
        """One click: the run refitted on half of the uploaded labelled data, checked on the other half, saved as
        a new, linked run (the worker writes it; the page shows the before / after and the downloads)."""
        if not run_id:
            return {"recal_status": error_md(NO_RUN)}
        if not upload:
            return {"recal_status": error_md("Upload the new site's labelled data above first (a zip of class "
                                             "folders or a table).")}
        owner = self.lab.owner(request)
        stop = self._stop_flag(owner.id, "validate")
        try:
            done = self.lab.recalibrate(owner, run_id, upload, Path(upload).name, site=(site or "").strip(),
                                        should_stop=stop.is_set,
                                        on_progress=lambda d, t, message: progress(d / max(t, 1), desc=message))
        except UserError as exc:
            return {"recal_status": error_md(str(exc)), "recal_table": "",
                    "recal_files": gr.File(value=None, visible=False)}
        except Exception as exc:
            return {"recal_status": error_md(user_message(exc, "recalibrating the model"))}
        files = [path for path in (done.get("files") or {}).values() if path]
        return {"recal_status": validate_view.recalibration_md(done),
                "recal_table": validate_view.recalibration_html(done),
                "recal_files": gr.File(value=files, visible=bool(files))}

    @outputs(*BATCH_KEYS)
    def score(self, run_id, upload, request: gr.Request, progress=gr.Progress()):
        if not run_id:
            return {"batch_status": error_md(NO_RUN)}
        if not upload:
            return {"batch_status": error_md("Upload the inputs to score first (a zip of images or a table).")}
        owner = self.lab.owner(request)
        stop = self._stop_flag(owner.id, "batch")
        try:
            written = self.lab.score_batch(owner, run_id, upload, Path(upload).name, should_stop=stop.is_set,
                                           on_progress=lambda done, total, message: progress(done / max(total, 1),
                                                                                             desc=message))
        except UserError as exc:
            return {"batch_status": error_md(str(exc)), "batch_files": gr.File(value=None, visible=False)}
        except Exception as exc:
            return {"batch_status": error_md(user_message(exc, "scoring the inputs"))}
        files = [path for path in (written.get("files") or {}).values() if path]
        return {"batch_status": validate_view.batch_md(written), "batch_files": gr.File(value=files, visible=bool(files))}

    def _stop(self, request, what: str) -> str:
        owner = self.lab.owner(request)
        with self._lock:
            flag = self._stops.get((owner.id, what))
        if flag is None:
            return "Nothing is running."
        flag.set()
        return "Stopping after the current batch…"

    @outputs("validate_status")
    def stop_validate(self, request: gr.Request):
        """Stop: the person's running check ends after its current batch."""
        return {"validate_status": self._stop(request, "validate")}

    @outputs("batch_status")
    def stop_batch(self, request: gr.Request):
        return {"batch_status": self._stop(request, "batch")}
