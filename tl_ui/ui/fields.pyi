"""Form fields whose refusals read as plain sentences."""
from __future__ import annotations

import gradio as gr

from gradio.events import Dependency

class BoundedNumber(gr.Number):
    """A `gr.Number` that refuses a value outside its range by naming the field, the bound and what to enter.
    Gradio's own check says only "Value 5000 is greater than maximum value 200." (the page shows it as an error
    box with no field named). The page draws it as a plain Number."""

    def get_block_name(self) -> str:
        return "number"

    def get_block_class(self) -> str:
        return "number"

    def preprocess(self, payload):
        if payload is not None:
            field = (self.label or "This number").rstrip(" :")
            if self.maximum is not None and payload > self.maximum:
                raise gr.Error(f"{field}: {payload:g} is more than allowed here. Enter {self.maximum:g} or less.")
            if self.minimum is not None and payload < self.minimum:
                raise gr.Error(f"{field}: {payload:g} is less than allowed here. Enter {self.minimum:g} or more.")
        return super().preprocess(payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component