"""The labelling view's events (issue 41): each turns one action into a call of the service
(`lab.labelling`, tl_ui/service/labelling.py) and returns `{key: value}` through the same `@outputs`
declaration as tl_ui/ui/handlers.py."""
from __future__ import annotations

import html
import logging
from pathlib import Path

import gradio as gr

from tl_ui.service.errors import UserError
from tl_ui.ui.formatting import error_md, user_message
from tl_ui.ui.handlers import KeysAsComponents, outputs
from tl_ui.ui.labelling_view import (KEYS_JS, MAX_BUTTONS, SAMPLE_POOL_SIZE, VIEW_KEYS, curve_frame, curve_text,
                                     shortcut_keys, item_html)
from tl_ui.ui.thumbnails import thumbnail

log = logging.getLogger(__name__)


class LabellingHandlers:
    def __init__(self, lab, main=None):
        self.lab = lab
        self.main = main                    # tl_ui.ui.handlers.Handlers: loads the labelled set as the data
        self._folders: dict = {}            # owner key -> their private folder for the item's preview
        self.c: dict = KeysAsComponents()

    def output_components(self, handler) -> list:
        return [self.c[key] for key in handler.output_keys]

    @property
    def service(self):
        return self.lab.labelling

    # -- what the view shows ------------------------------------------------------------------------------
    def _view(self, owner, session, view: dict, status: str = "") -> dict:
        service = self.service
        service.keep_fresh(owner, session)
        current = service.current(session)
        keys = shortcut_keys(session.classes)
        values = {f"lbl_class_{i}": gr.Button(value=f"{name}  [key {keys[i]}]", visible=True)
                  if i < len(session.classes) else gr.Button(visible=False)
                  for i, name in enumerate(list(session.classes) + [""] * (MAX_BUTTONS - len(session.classes)))}
        frame = curve_frame(session.curve)
        values.update(lbl_progress=f"**{session.progress()}**",
                      lbl_curve=frame, lbl_timer=gr.Timer(active=True),   # the page follows the model's suggestions
                      lbl_stop=curve_text(session.curve), lbl_status=status or self._status(session))
        view = {**view, "version": session.version}
        if current is None:
            view.update(item=None, guess=None)
            values.update(lbl_item="",
                          lbl_guess="**Every item of the pool is labelled or set aside.**", lbl_why="",
                          lbl_confirm=gr.Button(visible=False), lbl_state=view)
            return values
        view.update(item=current["item"], guess=current.get("guess"))
        values.update(self._item(owner, session, current["item"]))
        if current.get("guess") is not None:
            values["lbl_guess"] = (f"**The model's guess: {html.escape(str(current['guess']))}** — not saved until "
                                   "you confirm it (Enter) or press a class.")
            values["lbl_confirm"] = gr.Button(value=f"Confirm the model's guess: {current['guess']} [Enter]",
                                              visible=True)
        else:
            values["lbl_guess"] = "*No guess from the model yet.*"
            values["lbl_confirm"] = gr.Button(visible=False)
        values["lbl_why"] = f"**{html.escape(current['item'])}** · why this item: {html.escape(current['reason'])}"
        values["lbl_state"] = view
        return values

    def _status(self, session) -> str:
        if session.error:
            return error_md(session.error)
        name = html.escape(session.inputs.source or "the pool")
        note = " The model is choosing the next items…" if session.refreshing else ""
        return f"Labelling *{name}* ({len(session.inputs):,} {session.inputs.modality}s).{note}"

    def _item(self, owner, session, name: str) -> dict:
        path = session.item_path(name)
        if session.inputs.modality == "text":
            return {"lbl_item": item_html(name, "text", str(path or ""))}
        import base64

        folder = self._folders.get(owner.key)
        if folder is None or not folder.is_dir():   # the owner's private folder (cleaned up with it)
            folder = self._folders[owner.key] = self.lab.private.new_folder(owner, "label-item")
        thumb = thumbnail(path, folder, "item", size=512) if path else None
        data = base64.b64encode(thumb.read_bytes()).decode("ascii") if thumb else ""
        if thumb:
            thumb.unlink(missing_ok=True)
        return {"lbl_item": item_html(name, "image", png_base64=data)}

    def _session(self, request):
        owner = self.lab.owner(request)
        return owner, self.service.session(owner)

    # -- events -------------------------------------------------------------------------------------------
    @outputs(VIEW_KEYS)
    def restore(self, view, request: gr.Request):
        """Page load: the owner's session and labels, as they were (reload, server restart)."""
        try:
            owner, session = self._session(request)
            if session is None:
                return {}
            return self._view(owner, session, view or {})
        except Exception as exc:   # noqa: BLE001
            return {"lbl_status": error_md(user_message(exc, "reading your labels"))}

    @outputs(VIEW_KEYS)
    def start(self, pool, classes, examples, view, request: gr.Request, progress=gr.Progress()):
        if not pool:
            return {"lbl_status": error_md("Upload the unlabelled pool first (a zip of images or a table of texts).")}
        owner = self.lab.owner(request)
        names = [c.strip() for c in (classes or "").split(",") if c.strip()]
        return self._begin(owner, progress, lambda: self.service.start(owner, pool, Path(pool).name, names,
                                                                       labels_src=examples or None))

    @outputs(VIEW_KEYS)
    def start_sample(self, view, request: gr.Request, progress=gr.Progress()):
        owner = self.lab.owner(request)

        def sample_session():
            pool = self.service.sample_pool(owner, SAMPLE_POOL_SIZE)
            return self.service.start(owner, pool, pool.name, [str(d) for d in range(10)])

        return self._begin(owner, progress, sample_session)

    def _begin(self, owner, progress, open_session) -> dict:
        """A new session (`open_session()`), its first suggestions waited for, then the view."""
        try:
            session = open_session()
            progress(0.1, desc="Embedding the pool once (seconds to a few minutes); the model then asks")
            self.service.keep_fresh(owner, session, wait=True)
            return self._view(owner, session, {})
        except UserError as exc:
            return {"lbl_status": error_md(str(exc))}
        except Exception as exc:   # noqa: BLE001
            return {"lbl_status": error_md(user_message(exc, "starting the labelling"))}

    def _act(self, request, view, action) -> dict:
        try:
            owner, session = self._session(request)
            if session is None:
                return {"lbl_status": error_md("Start labelling first: upload a pool above.")}
            message = action(owner, session, view or {})
            return self._view(owner, session, view or {}, status=message or "")
        except UserError as exc:
            return {"lbl_status": error_md(str(exc))}
        except Exception as exc:   # noqa: BLE001
            return {"lbl_status": error_md(user_message(exc, "saving the label"))}

    def press(self, index: int):
        @outputs(VIEW_KEYS)
        def handler(self_, view, request: gr.Request):
            def act(owner, session, view):
                if not view.get("item"):
                    return "Nothing to label."
                if index >= len(session.classes):
                    return ""
                self.service.label(owner, session, view["item"], session.classes[index])
                return ""
            return self._act(request, view, act)
        handler.__name__ = f"press_{index}"
        return handler.__get__(self)

    @outputs(VIEW_KEYS)
    def confirm(self, view, request: gr.Request):
        def act(owner, session, view):
            if not view.get("item") or view.get("guess") is None:
                return "The model has no guess for this item: press a class."
            self.service.label(owner, session, view["item"], str(view["guess"]))
            return ""
        return self._act(request, view, act)

    @outputs(VIEW_KEYS)
    def not_sure(self, view, request: gr.Request):
        def act(owner, session, view):
            if view.get("item"):
                self.service.label(owner, session, view["item"], "")
                return f"Set aside as not sure: {view['item']} (Undo takes it back)."
            return ""
        return self._act(request, view, act)

    @outputs(VIEW_KEYS)
    def skip(self, view, request: gr.Request):
        def act(owner, session, view):
            if view.get("item"):
                self.service.skip(session, view["item"])
                return f"Skipped {view['item']} for now (it comes back at the end)."
            return ""
        return self._act(request, view, act)

    @outputs(VIEW_KEYS)
    def undo(self, view, request: gr.Request):
        def act(owner, session, view):
            last = session.store.undo()
            if last is None:
                return "Nothing to undo."
            with session.lock:   # show the undone item again first
                session.queue.insert(0, {"item": last.item, "score": None, "guess": None,
                                         "reason": "You undid its label: label it again."})
            return f"Undone: {last.item} ({last.label or 'not sure'})."
        return self._act(request, view, act)

    @outputs("lbl_curve", "lbl_stop", "lbl_status", "lbl_state")
    def tick(self, view, request: gr.Request):
        """The model's new suggestions arrived: the curve and the sentence follow (the item shown stays)."""
        try:
            session = self.service.loaded(self.lab.owner(request))
        except Exception:   # noqa: BLE001
            return {}
        if session is None or (view or {}).get("version") == session.version:
            return {}
        frame = curve_frame(session.curve)
        return {"lbl_curve": frame, "lbl_stop": curve_text(session.curve),
                "lbl_status": self._status(session), "lbl_state": {**(view or {}), "version": session.version}}

    @outputs("lbl_export_file", "lbl_status")
    def export(self, request: gr.Request):
        owner, session = self._session(request)
        if session is None:
            return {"lbl_status": error_md("Nothing labelled yet.")}
        path = self.service.export(session)
        copy = self.lab.private.copy(owner, path, "labels.csv")
        return {"lbl_export_file": gr.File(value=str(copy), visible=True)}

    def to_wizard(self, model_choice, state, request: gr.Request):
        """The labelled set becomes the Data step's data (strategy → train → results follow as usual); the
        run records where its labels came from (run.json's extra.labels_provenance)."""
        owner, session = self._session(request)
        try:
            if session is None:
                raise UserError("Start labelling first: upload a pool above.")
            path = self.service.training_file(session)
        except UserError as exc:
            return {self.c["lbl_status"]: error_md(str(exc))}
        outcome = self.lab.load_data(owner, path, path.name, copy=False)
        values = self.main._data_loaded(owner, state, outcome, model_choice)
        kept, left_out = self.service.trainable(session)
        note = "" if not left_out else (
            " Left out: " + ", ".join(f"{html.escape(c)} ({k} label)" for c, k in left_out.items()) +
            " — a class needs 2 labels to be trained on; label more of it, then press the button again.")
        return {**{self.main.c[k]: v for k, v in values.items()},
                self.c["lbl_status"]: (f"Loaded {len(kept)} labelled items as your data: continue with step 3 "
                                       f"(strategy) and step 4 (train).{note}") if outcome.dataset is not None else
                error_md(outcome.error),
                self.c["tabs"]: gr.Tabs(selected="strategy") if outcome.dataset is not None else gr.skip()}


def wire(demo, main, c: dict, lab) -> None:
    """The labelling view's events (called by tl_ui/app/webapp.py)."""
    from tl_ui.ui.handlers import DATA_KEYS

    lh = LabellingHandlers(lab, main)
    lh.c = c
    private = {"api_visibility": "private"}
    view = c["lbl_state"]
    quick = {"concurrency_limit": 4, "concurrency_id": "labelling", "show_progress": "hidden"}

    def on(trigger, handler, inputs, **kw):
        return trigger(handler, inputs, lh.output_components(handler), **{**private, **kw})

    demo.load(None, None, None, js=KEYS_JS, **private)
    on(demo.load, lh.restore, view, **quick)
    on(c["lbl_start"].click, lh.start, [c["lbl_pool"], c["lbl_classes"], c["lbl_examples"], view],
       concurrency_limit=2, concurrency_id="labelling-start", show_progress_on=c["lbl_status"])
    on(c["lbl_sample"].click, lh.start_sample, view, concurrency_limit=2, concurrency_id="labelling-start",
       show_progress_on=c["lbl_status"])
    for i in range(MAX_BUTTONS):
        on(c[f"lbl_class_{i}"].click, lh.press(i), view, **quick, trigger_mode="once")
    on(c["lbl_confirm"].click, lh.confirm, view, **quick, trigger_mode="once")
    on(c["lbl_not_sure"].click, lh.not_sure, view, **quick, trigger_mode="once")
    on(c["lbl_skip"].click, lh.skip, view, **quick, trigger_mode="once")
    on(c["lbl_undo"].click, lh.undo, view, **quick, trigger_mode="once")
    on(c["lbl_timer"].tick, lh.tick, view, **quick)
    on(c["lbl_export"].click, lh.export, None, **quick)
    outs = [c[k] for k in DATA_KEYS] + [c["lbl_status"], c["tabs"]]
    event = c["lbl_train"].click(lh.to_wizard, [c["model_choice"], c["session"]], outs, **private,
                                 concurrency_limit=2, concurrency_id="data")
    event.success(main.strategy_info, main.form_inputs(), main.output_components(main.strategy_info), **private,
                  concurrency_limit=2, concurrency_id="info", preprocess=False)
