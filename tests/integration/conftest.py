"""Integration tests: they train real models, start real servers, workers or Ray. Each is marked
`integration` (and `slow` where a file says so) and has a five-minute limit unless it declares another
(`@pytest.mark.timeout(...)`, with the reason in its docstring)."""
from __future__ import annotations

import os

import pytest

INTEGRATION_TIMEOUT_S = 300


def pytest_collection_modifyitems(items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(INTEGRATION_TIMEOUT_S))
