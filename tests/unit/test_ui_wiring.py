"""The page's structure without a browser: handlers answer {component: value} for the components
their events declare, the new form inputs reach RunConfig, importing the page loads no torch, and
figures about strategies are only the measured ones. (What the page may import: .importlinter.)"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tl_ui.ui import strategy as strategy_step
from tl_ui.ui.handlers import Handlers, outputs
from tl_ui.ui.state import SessionState


@pytest.fixture(scope="module")
def webapp(tmp_path_factory):
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    app = build_app(Settings(runs_dir=tmp_path_factory.mktemp("runs"), max_jobs=1, offline=True))
    yield app
    app.lab.close()


def _handlers(webapp) -> Handlers:
    handlers = [fn for block_fn in webapp.demo.fns.values() if (fn := getattr(block_fn, "fn", None)) is not None
                and getattr(fn, "output_keys", None) is not None]
    assert handlers, "no declared handler is wired"
    return handlers


def test_every_wired_handler_outputs_exactly_its_declared_components(webapp):
    for block_fn in webapp.demo.fns.values():
        keys = getattr(block_fn.fn, "output_keys", None)
        if keys is None:
            continue
        handler_self = block_fn.fn.__self__
        declared = [handler_self.c[k] for k in keys]
        assert [o._id for o in block_fn.outputs] == [d._id for d in declared], block_fn.name


def test_handlers_without_a_page_answer_by_key(tmp_path):
    """Called without a page (as tests do), handlers answer {key: value} and read inputs by key."""
    from tl_ui.service.lab import Lab
    from tl_ui.core.settings import Settings

    class Request:
        cookies, username, session_hash, client = {}, None, "page-1", None

    lab = Lab(Settings(runs_dir=tmp_path / "runs"))
    try:
        h = Handlers(lab)
        loaded = h.sample_loader("image")("efficientnet_lite0", SessionState(), Request())
        assert "300" in loaded["data_summary"] and loaded["data_error"] == ""
        refused = h.start({"session": SessionState(), "strategy_choice": "linear_probe"}, Request())
        assert "Load a dataset first" in refused["train_status"]
    finally:
        lab.close()


def test_undeclared_output_is_refused():
    class H(Handlers):
        @outputs("a")
        def bad(self):
            return {"b": 1}

    h = H(lab=None)
    h.c = {"a": object(), "b": object()}
    with pytest.raises(KeyError, match="undeclared"):
        h.bad()


def test_nothing_to_change_is_a_skip_not_an_empty_dict():
    """Gradio reads an empty dict as a single value ("didn't return enough output values")."""
    import gradio as gr

    class H(Handlers):
        @outputs("a", "b")
        def quiet(self):
            return {}

    h = H(lab=None)
    h.c = {"a": object(), "b": object()}
    answer = h.quiet()
    assert list(answer) == [h.c["a"]] and answer[h.c["a"]] == gr.skip()


def test_new_ids_exist(webapp):
    config = webapp.demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    for elem_id in ("group-column", "compare-scratch", "set-level", "try-set", "reliability-plot",
                    "scratch-comparison", "group-table", "runs-table", "compare-runs", "compare-plot",
                    "compare-diff", "calibration-summary", "conformal-summary",
                    # the ids docs/contracts.md promised before
                    "model-choice", "hub-id", "data-upload", "use-sample-image", "use-sample-text", "data-summary",
                    "data-error", "class-counts", "strategy-choice", "strategy-info", "epochs", "start-btn",
                    "stop-btn", "train-status", "loss-plot", "acc-plot", "train-log", "metrics-table",
                    "per-class-table", "confusion-plot", "mistakes-gallery", "mistakes-table", "try-text",
                    "try-image", "try-btn", "try-output", "download-model", "download-run-json", "download-card",
                    "to-results", "tab-model", "tab-data", "tab-strategy", "tab-train", "tab-results",
                    "advisor-btn", "advisor-table", "advisor-note"):
        assert elem_id in ids, elem_id


def test_form_options_reach_the_run_config(webapp):
    from tl_ui.data import load_dataset, sample_dataset_path

    h = next(fn.__self__ for fn in _handlers(webapp))
    c = h.c
    state = SessionState()
    state.columns = {"text_column": "", "label_column": "", "group_column": "site"}
    data = {comp: comp.value for comp in h.form_inputs()}
    data.update({c["session"]: state, c["compare_scratch"]: True, c["set_level"]: 0.95,
                 c["strategy_choice"]: "linear_probe"})
    model_id, options, _ = h.form(data)
    assert options["compare_scratch"] is True and options["set_level"] == 0.95
    assert options["group_column"] == "site"
    ds = load_dataset(sample_dataset_path("image"), Path(webapp.settings.runs_dir) / "tmp-unpack")
    options.pop("group_column")   # the digits have no group column
    config = webapp.lab.make_config(model_id, options, ds)
    assert config.compare_scratch is True and config.set_level == 0.95


def test_strategy_figures_are_only_measured_ones(monkeypatch):
    import tl_ui.core.measured as measured

    monkeypatch.setattr(measured, "text_strategy_claim", lambda: None)
    assert strategy_step.measured_claim() == ""
    for text in (strategy_step.TEXT_LORA_REASON, strategy_step.TEXT_LORA_REASON_OTHER, strategy_step.TEXT_PROBE_HINT):
        assert "%" not in text
    monkeypatch.setattr(measured, "text_strategy_claim", lambda: "on the sample reviews LoRA scored 69% ± 5%")
    assert strategy_step.measured_claim() == "Measured: on the sample reviews LoRA scored 69% ± 5%."


def test_importing_the_page_loads_no_torch():
    code = ("import sys, tl_ui.app.webapp, tl_ui.ui.results_view, tl_ui.ui.compare_view; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_form_maxima_are_the_servers_run_limits(tmp_path):
    """The Strategy step offers no number the service would refuse: each maximum is the server's limit."""
    from tl_ui.app.webapp import build_app
    from tl_ui.core.config import ConfigError, RunConfig
    from tl_ui.core.settings import Settings

    settings = Settings(runs_dir=tmp_path / "runs", max_jobs=1, offline=True, max_budget_minutes=7,
                        max_epochs=9, max_batch_size=16, max_image_size=96, max_lora_rank=4)
    app = build_app(settings)
    try:
        components = {comp.elem_id: comp for comp in app.demo.blocks.values() if getattr(comp, "elem_id", None)}
        maxima = {key: components[key].maximum for key in ("budget-minutes", "epochs", "batch-size", "image-size",
                                                           "lora-rank")}
        assert maxima == {"budget-minutes": 7, "epochs": 9, "batch-size": 16, "image-size": 96, "lora-rank": 4}
        # a number past a field's bound is refused in a sentence that names the field and what to enter
        import gradio as gr
        with pytest.raises(gr.Error) as too_many:
            components["epochs"].preprocess(5000)
        assert too_many.value.message == ("Epochs (passes over the training data): 5000 is more than allowed here. "
                                          "Enter 9 or less.")
        with pytest.raises(gr.Error) as too_few:
            components["batch-size"].preprocess(0)
        assert too_few.value.message == "Batch size: 0 is less than allowed here. Enter 1 or more."
        import tl_ui   # building the page wrote nothing into the package (Gradio writes a .pyi per component subclass)
        assert not list(Path(tl_ui.__file__).parent.rglob("*.pyi"))
        assert components["epochs"].preprocess(9) == 9
        with pytest.raises(ConfigError, match="limit of 7"):   # one more than the form allows is refused
            settings.run_limits().check(RunConfig.from_options({"strategy": "auto", "budget_minutes": 8, "epochs": 2, "lora_rank": 4},
                                                               modality="image"))
    finally:
        app.lab.close()


def test_no_timer_polls_before_the_page_has_something_to_follow(webapp):
    """Every open page would otherwise send the server a request every few seconds for as long as it stays open:
    the Train step's timer starts with a run, the Results step's with a scratch run, the labelling view's with
    a labelling session (LabellingHandlers._view)."""
    import gradio as gr

    timers = [block for block in webapp.demo.blocks.values() if isinstance(block, gr.Timer)]
    assert len(timers) >= 3
    assert not [t for t in timers if t.active], [(t.elem_id, t.value) for t in timers if t.active]
