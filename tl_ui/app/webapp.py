"""Transfer Lab web app: `build_app(settings)` lays out the wizard (Model → Data → Strategy →
Train → Results) over one `Lab` (the service layer) and wires its events; `main()` reads flags /
TL_* environment variables and serves it (`python app.py --help` lists every setting).
"""
from __future__ import annotations

import os

# Before gradio / huggingface_hub are imported: no analytics or telemetry calls at start-up.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import logging  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import gradio as gr  # noqa: E402

from tl_ui.core.settings import Settings, SettingsError, load_settings  # noqa: E402
from tl_ui.ui import api as api_step  # noqa: E402
from tl_ui.ui import data as data_step  # noqa: E402
from tl_ui.ui import model as model_step  # noqa: E402
from tl_ui.ui import results as results_step  # noqa: E402
from tl_ui.ui import strategy as strategy_step  # noqa: E402
from tl_ui.ui import train as train_step  # noqa: E402
from tl_ui.ui import validate as validate_step  # noqa: E402
from tl_ui.ui.validate_handlers import NewDataHandlers  # noqa: E402
from tl_ui.service.lab import Lab  # noqa: E402
from tl_ui.ui.handlers import Handlers  # noqa: E402
from tl_ui.ui.state import SessionState  # noqa: E402
from tl_ui.ui.theme import PAGE_SCRIPT_JS  # noqa: E402

log = logging.getLogger("tl_ui.app")

TITLE = "Transfer Lab"
INTRO = (
    "# Transfer Lab\n"
    "Teach a pretrained model to sort **your** images or texts into **your** classes — no coding. "
    "Steps 1–5 below train a model and show how well it works; step 6 checks it on new data and scores batches. Want to see it work first? In **2 · Data** press **Use the sample "
    "images**, then in **4 · Train** press **Start training** (keep every other default): the sample "
    "digits train in seconds."   # measured: 7-9 s from Start to results (docs/benchmarks.md, issue 32)
)


def quiet_warnings() -> None:
    """Gradio's queue logs a Pandas4Warning per event under pandas 3: filter it."""
    warnings.filterwarnings("ignore", message=".*Pandas4Warning.*")
    try:
        from pandas.errors import Pandas4Warning  # pandas >= 3

        warnings.filterwarnings("ignore", category=Pandas4Warning)
    except ImportError:  # pragma: no cover - pandas 2
        pass


@dataclass
class WebApp:
    """The page and the service it calls (the server, the tests and the CLI reach runs through `lab`)."""
    demo: gr.Blocks
    lab: Lab
    settings: Settings


def apply_process_env(settings: Settings) -> None:
    """Environment a server needs before gradio/transformers start talking to the network."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # read by the engine in this process and in every worker it starts (tl_ui/engine/models/fast_path.py)
    os.environ["TL_FAST_PATH"] = "1" if settings.fast_path else "0"
    if settings.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ["TL_OFFLINE"] = "1"


def build_app(settings: Optional[Settings] = None, train_fn=None) -> WebApp:
    """The whole page over one Lab; per-session state lives in gr.State only."""
    settings = (settings or Settings()).validate()
    apply_process_env(settings)
    quiet_warnings()
    lab = Lab(settings, train_fn=train_fn)
    h = Handlers(lab)
    ttl = int(settings.session_ttl_hours * 3600)

    with gr.Blocks(title=TITLE, delete_cache=(max(60, int(settings.cleanup_minutes * 60)), ttl),
                   analytics_enabled=False) as demo:
        c: dict = {}
        c["session"] = gr.State(SessionState(), time_to_live=max(ttl, 3600))
        # the owner token, kept by the page itself where cookies are blocked (tl_ui/service/identity.py).
        # Not gr.BrowserState: where a browser denies storage to a third-party frame, its unguarded
        # localStorage read stops the whole page from rendering. TOKEN_READ_JS / TOKEN_WRITE_JS guard it.
        c["owner_token"] = gr.Textbox("", visible=False, elem_id="owner-token")
        gr.Markdown(INTRO)
        with gr.Tabs(selected="model") as tabs:
            with gr.Tab("1 · Model", id="model", elem_id="tab-model"):
                c.update(model_step.build(settings.offline))
            with gr.Tab("2 · Data", id="data", elem_id="tab-data"):
                c.update(data_step.build(settings.max_upload_mb))
            with gr.Tab("3 · Strategy", id="strategy", elem_id="tab-strategy") as strategy_tab:
                c.update(strategy_step.build(settings.run_limits()))
                c["strategy_tab"] = strategy_tab
            with gr.Tab("4 · Train", id="train", elem_id="tab-train"):
                c.update(train_step.build())
            with gr.Tab("5 · Results", id="results", elem_id="tab-results"):
                c.update(results_step.build())
            with gr.Tab("6 · Validate & use", id="validate", elem_id="tab-validate") as validate_tab:
                c.update(validate_step.build())
                c["validate_tab"] = validate_tab
        c["tabs"] = tabs
        h.c = c
        api_step.build(h)
        _wire(demo, h, c)
        _wire_new_data(h, c)
        from tl_ui.ui import labelling_handlers

        labelling_handlers.wire(demo, h, c, lab)
    demo.queue(default_concurrency_limit=4)
    return WebApp(demo, lab, settings)


# The page's own storage, where the browser allows it (partitioned storage in a third-party frame);
# where it is denied, the partitioned cookie or this page's connection carries the owner.
TOKEN_READ_JS = "() => { try { return window.localStorage.getItem('tl_owner_token') || ''; } catch (e) { return ''; } }"
TOKEN_WRITE_JS = "(t) => { try { if (t) window.localStorage.setItem('tl_owner_token', t); } catch (e) {} return t; }"


def _wire(demo: gr.Blocks, h: Handlers, c: dict) -> None:
    """Events -> handlers; each event's outputs are the components its handler declares."""
    private = {"api_visibility": "private"}
    state = c["session"]

    def on(trigger, handler, inputs, **kw):
        return trigger(handler, inputs, h.output_components(handler), **{**private, **kw})

    token = c["owner_token"]
    demo.load(None, None, token, js=TOKEN_READ_JS, **private).then(
        h.on_load, [state, token], h.output_components(h.on_load), **private)
    token.change(None, token, None, js=TOKEN_WRITE_JS, **private)
    demo.load(None, None, None, js=PAGE_SCRIPT_JS, **private)

    # tab navigation
    for button, target in (("model_next", "data"), ("data_next", "strategy"), ("strategy_next", "train"),
                           ("to_results", "results")):
        c[button].click(lambda t=target: gr.Tabs(selected=t), None, c["tabs"], **private)

    # step 1
    for trigger in (c["model_choice"].change, c["hub_id"].submit, c["hub_id"].blur):
        on(trigger, h.on_model_change, [c["model_choice"], c["hub_id"], state])

    # step 2 (reading data is CPU-heavy: at most two at once across all users)
    data_kw = {"concurrency_limit": 2, "concurrency_id": "data", "show_progress_on": c["data_summary"]}
    columns = [c["text_column"], c["label_column"], c["group_column"]]
    multilabel = [c["label_columns"], c["label_separator"]]   # after the session state (handlers' signatures)
    # step 3's box is refreshed after data loads (a chained step, so it reads the model choice
    # after the data step has updated it)
    form = h.form_inputs()
    # preprocess=False: Handlers.strategy_info checks its inputs itself (a model choice sent just before a
    # data load switched the shelf must not become Gradio's generic error toast; issue 42)
    info_kw = {"concurrency_limit": 2, "concurrency_id": "info", "show_progress": "minimal",
               "show_progress_on": c["strategy_info"], "preprocess": False}
    data_events = [
        on(c["data_upload"].upload, h.on_upload, [c["data_upload"], *columns, c["model_choice"], state, *multilabel],
           **data_kw),
        on(c["data_reload"].click, h.on_reload, [*columns, c["model_choice"], state, *multilabel], **data_kw),
        on(c["use_sample_image"].click, h.sample_loader("image"), [c["model_choice"], state], **data_kw),
        on(c["use_sample_text"].click, h.sample_loader("text"), [c["model_choice"], state], **data_kw),
    ]
    for event in data_events:
        on(event.success, h.strategy_info, form, **info_kw)
    # the model advisor: models run in a worker process (at most settings.max_jobs at once)
    on(c["advisor_btn"].click, h.advise, [state, c["dicom_window"], c["image_size"]],
       concurrency_limit=2, concurrency_id="advisor", show_progress_on=c["advisor_note"])
    # DICOM data: the previews follow the display window (a user's choice only: .input)
    on(c["dicom_window"].input, h.on_dicom_window, [c["dicom_window"], state],
       **{**data_kw, "show_progress_on": c["data_gallery"]})

    # step 3: defaults follow the strategy; the info box follows everything that changes it
    on(c["strategy_choice"].change, h.on_strategy_change, c["strategy_choice"])
    on(c["budget_minutes"].change, h.on_budget_change, c["budget_minutes"])
    for key in ("strategy_choice", "model_choice", "epochs", "max_examples", "image_size",
                "unfreeze_groups", "lora_rank", "compare_scratch", "budget_minutes"):
        on(c[key].change, h.strategy_info, form, **info_kw)
    on(c["strategy_tab"].select, h.strategy_info, form, **info_kw)

    # step 4: submit to the runner, then poll it
    on(c["start_btn"].click, h.start, form, concurrency_limit=None)
    on(c["stop_btn"].click, h.stop, state, concurrency_limit=None)
    on(c["timer"].tick, h.tick, state, concurrency_limit=None, show_progress="hidden")
    on(c["continue_btn"].click, h.continue_run, [c["more_epochs"], state], concurrency_limit=None)

    # step 5 (each update of the runs overlay is followed by its colours: see compare_colours)
    hidden = {"concurrency_limit": None, "show_progress": "hidden"}
    for event in (
        on(c["finished_run"].change, h.show_run, [c["finished_run"], state]),
        on(c["previous_runs"].input, h.show_run, [c["previous_runs"], state]),
        on(c["compare_runs"].input, h.compare_runs, c["compare_runs"], concurrency_limit=2,
           concurrency_id="compare"),
        on(c["results_timer"].tick, h.scratch_tick, state, **hidden),
    ):
        on(event.then, h.compare_colours, c["compare_runs"], **hidden)
    on(c["refresh_runs"].click, h.refresh_runs, None)
    # the Operating point panel: its readout follows the slider and the class picked, live (no model)
    for trigger in (c["op_slider"].release, c["op_slider"].input, c["op_class"].input):
        on(trigger, h.operating_point_slide, [c["op_class"], c["op_slider"], state], concurrency_limit=4,
           concurrency_id="operating-point", show_progress="hidden", trigger_mode="always_last")
    # answers come from the inference workers (their own caps, tl_ui/jobs/inference); a try-it answer
    # never waits behind an explanation's slower passes
    try_kw = {"concurrency_limit": 2, "concurrency_id": "predict"}
    why_kw = {"concurrency_limit": 2, "concurrency_id": "explain"}
    for trigger in (c["try_btn"].click, c["try_text"].submit):
        on(trigger, h.try_it, [c["try_image"], c["try_file"], c["try_text"], state], **try_kw)
    on(c["try_why_btn"].click, h.explain_it, [c["try_image"], c["try_file"], c["try_text"], state], **why_kw)
    on(c["mistakes_why_btn"].click, h.explain_mistakes, state, **why_kw)
    # the study report reads files only (no model): in the web process, at most two at once
    on(c["report_btn"].click, h.make_report, state, concurrency_limit=2, concurrency_id="report")
    # share & export (issue 39): the ONNX folder and the Space folder are made in a worker of their own
    on(c["share_onnx_btn"].click, h.export_onnx, state, concurrency_limit=2, concurrency_id="share")
    on(c["share_space_btn"].click, h.share_space, state, concurrency_limit=2, concurrency_id="share")


def _wire_new_data(h: Handlers, c: dict) -> None:
    """Step 6 (issue 34): the run list follows the tab; a check and a batch run in a worker of their own each
    (at most two at once here; the pool's own cap, TL_MAX_JOBS, is the real limit); Stop never waits."""
    nd = NewDataHandlers(h.lab)
    nd.c = c
    private = {"api_visibility": "private"}

    def on(trigger, handler, inputs, **kw):
        return trigger(handler, inputs, nd.output_components(handler), **{**private, **kw})

    for trigger in (c["validate_tab"].select, c["validate_refresh"].click):
        on(trigger, nd.runs, c["validate_run"], concurrency_limit=None)
    long_kw = {"concurrency_limit": 2, "concurrency_id": "new-data"}
    on(c["validate_btn"].click, nd.validate, [c["validate_run"], c["validate_upload"]],
       show_progress_on=c["validate_status"], **long_kw)
    on(c["recal_btn"].click, nd.recalibrate, [c["validate_run"], c["validate_upload"], c["recal_site"]],
       show_progress_on=c["recal_status"], **long_kw)
    on(c["batch_btn"].click, nd.score, [c["validate_run"], c["batch_upload"]],
       show_progress_on=c["batch_status"], **long_kw)
    on(c["validate_stop"].click, nd.stop_validate, None, concurrency_limit=None)
    on(c["batch_stop"].click, nd.stop_batch, None, concurrency_limit=None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"Transfer Lab cannot start: {exc}", file=sys.stderr)
        return 2
    from tl_ui.app.server import RunsFolderBusy, lock_runs_dir, serve

    try:  # before build_app: its start-up recovery must not touch another live server's runs
        lock_runs_dir(settings)
    except RunsFolderBusy as exc:
        print(f"Transfer Lab cannot start: {exc}", file=sys.stderr)
        return 2
    log.info("settings:\n%s", settings.describe())
    serve(build_app(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
