"""The shipped shelf facts against real models (built on the meta device), and a Hub model counted once in a worker."""
from __future__ import annotations

import json

import pytest

from tl_ui.core.catalog import get_model, list_models
from tl_ui.core.config import RunConfig
from tl_ui.engine.planning.shelf_facts import SHIPPED_PATH, counts_from_facts, shipped_facts
from tl_ui.service.shelf_facts import CACHE_NAME, ShelfFacts

OFFLINE = [e for e in list_models() if e.source == "packaged"]
SETTING_KEYS = ("unfreeze_groups", "lora_rank")


def _setting(row: dict) -> dict:
    return {k: row[k] for k in SETTING_KEYS if k in row}


# -- slow: against real models ---------------------------------------------------------------------

@pytest.mark.slow
def test_the_shipped_facts_are_current_and_exact_for_real_models():
    """The file is what the generator writes now, and its formula holds for real CPU builds (random
    weights) at settings it was not measured at: 10 classes, rank 16, every group count and beyond."""
    import torch  # noqa: F401

    from tl_ui.engine.models.build import load_model
    from tl_ui.engine.planning.shelf_facts import dump, shelf_facts
    from tl_ui.engine.training.strategies import plan

    generated = shelf_facts()
    shipped = json.loads(SHIPPED_PATH.read_text(encoding="utf-8"))
    assert generated["models"] == shipped["models"], (
        "tl_ui/engine/planning/shelf_facts.json is stale: run `python -m tl_ui.engine.planning.shelf_facts --write`")
    assert dump(shipped) == SHIPPED_PATH.read_text(encoding="utf-8")
    assert set(shipped["models"]) == {e.id for e in OFFLINE}
    for entry in OFFLINE:
        facts = shipped["models"][entry.id]
        settings = [("linear_probe", {}), ("full", {}), ("lora", {"lora_rank": 16}), ("lora", {"lora_rank": 1})]
        settings += [("partial", {"unfreeze_groups": g}) for g in (1, 3, facts["layer_groups"], 20)]
        if entry.modality == "text":
            settings.append(("setfit", {}))
        for strategy, setting in settings:
            loaded = load_model(entry, [str(i) for i in range(10)], random_init=True)   # real, on the CPU
            real = plan(loaded, RunConfig(model_id=entry.id, strategy=strategy, **setting))
            expected = counts_from_facts(facts, strategy, 10, setting.get("unfreeze_groups", 2),
                                         setting.get("lora_rank", 8))
            assert (expected["trainable"], expected["total"]) == (real.trainable_params, real.total_params), \
                (entry.id, strategy, setting)


@pytest.mark.slow
def test_a_model_missing_from_the_table_is_counted_once_in_a_worker_and_cached(tmp_path, monkeypatch):
    entry = get_model("mobilenet_v2")
    facts = ShelfFacts(tmp_path)
    facts._shipped = {}    # as if the shipped table lacked it (a wheel installed after it was written)
    counted = facts.describe(entry, "lora", 5, 2, 8)
    assert counted == counts_from_facts(shipped_facts()["mobilenet_v2"], "lora", 5, 2, 8)
    cache = json.loads((tmp_path / CACHE_NAME).read_text())
    assert list(cache["models"]) == ["packaged:mobilenetv2_100"]
    again = ShelfFacts(tmp_path)   # a restarted server reads the cache: no second worker
    again._shipped = {}
    monkeypatch.setattr(again, "_count_in_worker", lambda e: pytest.fail("counted twice"))
    assert again.describe(entry, "partial", 3, 1, 8) == counts_from_facts(shipped_facts()["mobilenet_v2"],
                                                                         "partial", 3, 1, 8)
