"""Form fields whose refusals read as plain sentences."""
from __future__ import annotations

import gradio as gr


def bounded_number(**kwargs) -> gr.Number:
    """A `gr.Number` that refuses a value outside its range by naming the field, the bound and what to enter.
    Gradio's own check says only "Value 5000 is greater than maximum value 200." (an error box with no field
    named). A plain Number whose check runs first, not a subclass: Gradio writes a .pyi file beside the module
    of every component subclass when it is imported."""
    number = gr.Number(**kwargs)
    plain_preprocess = number.preprocess

    def preprocess(payload):
        if payload is not None:
            field = (number.label or "This number").rstrip(" :")
            if number.maximum is not None and payload > number.maximum:
                raise gr.Error(f"{field}: {payload:g} is more than allowed here. Enter {number.maximum:g} or less.")
            if number.minimum is not None and payload < number.minimum:
                raise gr.Error(f"{field}: {payload:g} is less than allowed here. Enter {number.minimum:g} or more.")
        return plain_preprocess(payload)

    number.preprocess = preprocess
    return number
