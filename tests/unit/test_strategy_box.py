"""Step 3's box (issue 42 and issue 32 item 4), without a browser: what the probe's time estimate is for,
and an event that still names the model a data load has just switched away from."""
from __future__ import annotations

import pytest

from tl_ui.ui import strategy as strategy_step
from tl_ui.ui.state import SessionState


@pytest.fixture(scope="module")
def webapp(tmp_path_factory):
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    app = build_app(Settings(runs_dir=tmp_path_factory.mktemp("runs"), max_jobs=1, offline=True))
    yield app
    app.lab.close()


def _form(webapp, state, **values):
    """The strategy box's inputs as the page sends them with preprocess=False: raw payloads by component."""
    h = next(b.fn.__self__ for b in webapp.demo.fns.values() if getattr(b.fn, "__name__", "") == "strategy_info")
    data = {comp: comp.value for comp in h.form_inputs()}
    data[h.c["session"]] = state
    for key, value in values.items():
        data[h.c[key]] = value
    return h, data


def test_the_strategy_step_words_the_probe_time_without_epochs(webapp, digits):
    """Issue 32, item 4: the full-batch probe's epochs do not apply; the box says what the time is for."""
    lab = webapp.lab
    state = SessionState(dataset=digits)
    options = {**{k: None for k in strategy_step.OPTION_KEYS}, "strategy": "linear_probe", "epochs": 30}
    probe = strategy_step.strategy_info_md(lab, "efficientnet_lite0", options, state)
    assert "for 300 examples: the model reads each once, then the last layer is fitted in at most 200 " \
           "solver iterations." in probe and "epochs" not in probe.split("Rough time")[1], probe
    assert "**Trains 13k of 3.4M weights (0.38%).**" in probe, probe
    partial = strategy_step.strategy_info_md(lab, "efficientnet_lite0", {**options, "strategy": "partial",
                                                                        "epochs": 5}, state)
    assert "for 300 examples and 5 epochs." in partial, partial


def test_an_event_naming_the_model_a_data_load_switched_away_from_shows_the_new_ones_figures(webapp, digits):
    """Texts loaded, then images: the box's event was sent with MiniLM still chosen; Gradio's check of the
    filtered radio would refuse it with a generic error toast. The box shows EfficientNet-Lite0's figures."""
    h, data = _form(webapp, SessionState(dataset=digits), model_choice="minilm_l6", strategy_choice="linear_probe",
                    epochs=30)
    box = h.strategy_info(data)[h.c["strategy_info"]]
    assert "**Trains 13k of 3.4M weights (0.38%).**" in box and "Something went wrong" not in box, box


def test_a_number_beyond_its_field_is_a_plain_sentence(webapp, digits):
    h, data = _form(webapp, SessionState(dataset=digits), strategy_choice="partial", epochs=5000)
    box = h.strategy_info(data)[h.c["strategy_info"]]
    assert "200" in box and "Something went wrong" not in box, box   # the server's limit (RunLimits.max_epochs)
