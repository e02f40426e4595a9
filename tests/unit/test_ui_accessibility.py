"""Accessibility of the page's pieces without a browser: what each plot shows in words, the calm
training announcements for screen readers, the heat map's text contrast and the theme's colours
(the browser tests run axe-core on the whole page: tests/browser/test_browser.py, tests/browser/test_browser_a11y.py)."""
from __future__ import annotations

import math
import re

from tl_ui.ui import plot_text, train
from tl_ui.ui.results_html import confusion_html, contrast_ratio, text_colour
from tl_ui.ui.state import SessionState
from tl_ui.ui.train_view import train_view

EPOCH = {"kind": "epoch", "epochs": 3, "train_loss": 0.5, "val_loss": 0.4, "train_accuracy": 0.8,
         "val_accuracy": 0.9, "eta_s": 4}


def _events(epochs_done: int) -> list[dict]:
    events = [{"kind": "started", "run_id": "r1", "epochs": 3, "total_steps": 30}]
    for ep in range(1, epochs_done + 1):
        events.append({**EPOCH, "epoch": ep, "val_loss": 0.5 - 0.1 * ep, "val_accuracy": 0.7 + 0.1 * ep})
    return events


def test_curves_in_words_and_as_a_table():
    view = train_view(_events(2), "running")
    text = plot_text.curves_html(view.epoch_rows, view.epochs)
    assert "after epoch 2 of 3, validation accuracy 90.0% (training 80.0%), validation loss 0.300" in text
    assert "lowest after epoch 2" in text
    assert text.count("<tr>") == 1 + 2 and "<details>" in text and "<caption>" in text
    assert plot_text.curves_html([], None) == plot_text.CURVES_WAITING


def test_announcements_change_with_epochs_only_and_at_a_calm_rate(monkeypatch):
    state = SessionState()
    clock = [100.0]
    monkeypatch.setattr(train.time, "monotonic", lambda: clock[0])

    def said(events, job_state="running"):
        return train._calm_announcement(train_view(events, job_state), state)

    assert said(_events(0)) == "Training started: preparing the model and your data."
    clock[0] += 1
    assert said(_events(0)) is None                      # nothing new
    assert said(_events(1)) is None                      # new, but only a second later
    clock[0] += train.ANNOUNCE_EVERY_S
    assert said(_events(2)) == "Epoch 2 of 3 done, validation accuracy 90.0%."
    clock[0] += 1
    finished = _events(3) + [{"kind": "finished", "accuracy": 0.9, "n_val": 50, "best_epoch": 3}]
    assert said(finished, "finished") == ("Training finished: accuracy 90.0% on 50 test examples. "
                                          "The results are in step 5.")
    assert said(_events(1) + [{"kind": "stopped", "message": "Stopped by the user at epoch 1."}],
                "stopped") == "Stopped by the user at epoch 1."


def test_confusion_matrix_says_what_it_shows_and_its_numbers_are_readable():
    text = confusion_html([[19, 1, 0], [4, 16, 0], [0, 0, 20]], ["cat", "dog", "<fox>"])
    assert "right on 55 of 60 test examples (the diagonal); the most frequent mistake: true dog predicted as cat " \
           "(4 times)." in text
    assert "&lt;fox&gt;" in text and "<fox>" not in text
    for bg, fg in re.findall(r"background:rgb\((\d+, \d+, \d+)\);color:(#[0-9a-f]{6})", text):
        background = tuple(int(v) for v in bg.split(", "))
        foreground = tuple(int(fg[i:i + 2], 16) for i in (1, 3, 5))
        assert contrast_ratio(background, foreground) >= 4.5, (bg, fg)
    assert text_colour((255, 255, 255)) == "#000000" and text_colour((22, 128, 60)) == "#ffffff"
    for grey in range(256):   # black or white: at least 4.5:1 on any background
        background = (grey,) * 3
        text = (0, 0, 0) if text_colour(background) == "#000000" else (255, 255, 255)
        assert contrast_ratio(background, text) >= 4.5, grey


def test_reliability_and_overlay_in_words():
    import pandas as pd

    bins = [{"confidence": 0.55, "accuracy": 0.5, "count": 4}, {"confidence": 0.95, "accuracy": 1.0, "count": 0}]
    table = plot_text.reliability_html({"bins": bins, "bins_before": bins})
    assert table.count("<td>") == 2 * 3 and "55.0%" in table
    assert plot_text.reliability_html(None) == ""
    overlay = pd.DataFrame([(1.0, 0.5, "A"), (2.0, 0.7, "A"), (1.0, 0.6, "B"), (2.0, 0.4, "B")],
                           columns=["epoch", "accuracy", "run"])
    sentence = plot_text.overlay_sentence(overlay)
    assert sentence == ("In words, the validation accuracy of the ticked runs: A: 70.0% after epoch 2; "
                        "B: 40.0% after epoch 2 (best 60.0% after epoch 1).")
    assert plot_text.overlay_sentence(pd.DataFrame(columns=["epoch", "accuracy", "run"])) == ""
    overlay.attrs["units"] = {"A": "iteration"}   # a linear probe's rows count its solver's iterations
    assert plot_text.overlay_sentence(overlay).startswith("In words, the validation accuracy of the ticked runs: "
                                                          "A: 70.0% after iteration 2; B: 40.0% after epoch 2")


def test_probe_curves_are_labelled_by_iteration():
    """A linear probe's curves count L-BFGS iterations: the plots' axes and titles say so, not 'epoch'."""
    probe = [{"kind": "started", "run_id": "r1", "epochs": 200, "total_steps": 1, "unit": "iteration"},
             {**EPOCH, "epoch": 1}]
    loss_axis, acc_axis = train.plot_axes(train_view(probe, "running"))
    assert "iteration" in loss_axis["x_title"] and acc_axis["title"].endswith("once per iteration)")
    loss_axis, acc_axis = train.plot_axes(train_view(_events(1), "running"))
    assert loss_axis["x_title"] == acc_axis["x_title"] == "epoch" and acc_axis["title"].endswith("once per epoch)")


def test_theme_text_colours_meet_aa_contrast():
    """The theme's text colours against their backgrounds (light mode), as the page draws them."""
    from tl_ui.ui.theme import build_theme

    theme = build_theme()

    def resolve(value: str) -> tuple[int, int, int]:
        while value.startswith("*"):
            name = value[1:]
            hue, _, shade = name.rpartition("_")
            if hue in ("primary", "secondary", "neutral") and shade.isdigit():
                value = getattr(theme, f"{hue}_{shade}")
            else:
                value = getattr(theme, name)
        if value == "white":
            return (255, 255, 255)
        value = value.lstrip("#")
        return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))

    white, page = (255, 255, 255), resolve(theme.background_fill_primary)
    pairs = {
        "info text on the page": (theme.block_info_text_color, page),
        "subdued text on white": (theme.body_text_color_subdued, white),
        "labels on their tint": (theme.block_label_text_color, theme.block_label_background_fill),
        "primary button": (theme.button_primary_text_color, theme.button_primary_background_fill),
        "ticked box label": (theme.checkbox_label_text_color_selected, theme.checkbox_label_background_fill_selected),
        "links": (theme.link_text_color, white),
    }
    for what, (fg, bg) in pairs.items():
        ratio = contrast_ratio(resolve(fg), bg if isinstance(bg, tuple) else resolve(bg))
        assert ratio >= 4.5 and math.isfinite(ratio), f"{what}: {ratio:.2f}:1"


def test_an_unchanged_poll_redraws_no_plot():
    """The page polls every second; the plots get new rows only when there are new rows (each new value makes
    the browser build both Vega charts again), and a new run or a reopened page draws them afresh. The poll that
    sees the run ended (the page's last) always sends them."""
    import gradio as gr

    state = SessionState()

    def updates(events, run_state="running"):
        loss, acc, axis_only = train._plot_updates(train_view(events, run_state), state)
        if axis_only:   # a new x range goes out alone; its rows follow on the next poll
            loss, acc, _ = train._plot_updates(train_view(events, run_state), state)
        return loss, acc

    first = updates(_events(1))
    assert first[0]["value"] is not None and first[1]["value"] is not None
    assert updates(_events(1)) == (gr.skip(), gr.skip())            # nothing new: nothing sent
    assert updates(_events(2))[1]["value"] is not None              # an epoch more: drawn
    assert updates(_events(2)) == (gr.skip(), gr.skip())
    for ended in ("finished", "stopped"):                           # the last poll: sent even when unchanged
        assert updates(_events(2), ended)[0]["value"] is not None
    state.plot_x_lim = state.plot_sent = None                        # a reopened page (Handlers.on_load)
    assert updates(_events(2))[0]["value"] is not None
