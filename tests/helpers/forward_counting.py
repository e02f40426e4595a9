"""Count the examples that go through a real model's forward pass during a training run."""
from __future__ import annotations

import tl_ui.engine.training.loop as train_module


def count_forward_examples(monkeypatch) -> dict:
    """{"examples": n}, updated by a forward hook on every model the engine loads from now on."""
    seen = {"examples": 0}
    original = train_module.load_model

    def counting_load_model(*args, **kwargs):
        loaded = original(*args, **kwargs)
        loaded.model.register_forward_hook(lambda m, inputs, out: seen.__setitem__(
            "examples", seen["examples"] + inputs[0].shape[0]))
        return loaded

    monkeypatch.setattr(train_module, "load_model", counting_load_model)
    return seen
