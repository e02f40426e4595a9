"""Shared fixtures: quiet, offline environment, an in-process launched app, the sample datasets.

`launched_app` (session scope) yields the base URL of a running Transfer Lab (free port, its own
runs folder, max 1 training job, 8 MB upload limit); `launched_server` yields the same server's
`RunningServer` (for `.lab`: the service with its runner, workspace and private files); `digits` and
`reviews` are the shipped samples, loaded once per module. tests/unit, tests/integration and tests/browser
add their markers and time limits in their own conftest.py.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Before gradio / huggingface_hub are imported anywhere.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# Every temporary file of the session (the tests', and those of the apps, workers and Ray tasks they start, which
# inherit TMPDIR; gradio's uploads; the folder gradio_client leaves behind for each file it downloads) goes into
# one folder, removed when the session ends: the suite used to leave close to 1 GB in the temp directory per run.
# The first process makes it (with xdist, the controller; its test processes inherit it). pytest's own tmp_path
# folders stay in the system's temp directory, kept after a failed session only (pyproject.toml); that they are
# outside the app's temp directory also means no test passes only because gradio serves any file under it.
if "TL_TEST_SCRATCH" not in os.environ:
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
    os.environ["TL_TEST_SCRATCH"] = tempfile.mkdtemp(prefix="tl-test-scratch-")
    atexit.register(shutil.rmtree, os.environ["TL_TEST_SCRATCH"], ignore_errors=True)
os.environ["TMPDIR"] = os.environ["TL_TEST_SCRATCH"]
tempfile.tempdir = None   # tempfile reads TMPDIR again
os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(os.environ["TL_TEST_SCRATCH"], "gradio"))
# The test processes train models themselves (at nice 0); the app's training workers, niced 5 below the
# page by default, would wait behind them for minutes. Every app a test starts (in-process or as a
# subprocess) reads this.
os.environ.setdefault("TL_WORKER_NICE", "0")
# Several test processes share this machine's cores (scripts/test.sh: two on two cores): one torch/OpenMP thread
# each, for them and for every worker, server and Ray task they start (the environment is inherited). Two threads
# per process would be four on two cores, and OpenMP's threads spin waiting for each other whenever one is
# descheduled: a test that trains in 50 s alone took 4-5 minutes beside another (docs/benchmarks.md, "Inference
# under load", measures the same effect: 20 ms with one thread against 820 ms with two).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")


import pytest  # noqa: E402

from tests.helpers.common import TEST_UPLOAD_MB  # noqa: E402

# What a test's folder says about it: its markers and its time limit in seconds (a test may declare a
# longer one with @pytest.mark.timeout, and say why in its docstring). tests/unit/conftest.py also
# checks that a unit test trains nothing.
KINDS = {"unit": (("unit",), 60), "integration": (("integration",), 300),
         "browser": (("browser", "integration", "slow"), 600)}
TESTS = Path(__file__).resolve().parent


FOLDER_ORDER = ("browser", "integration", "unit")


def pytest_collection_modifyitems(items):
    longest: dict[str, float] = {}   # per file: the longest time limit one of its tests declares
    for item in items:
        folder = Path(str(item.fspath)).resolve().relative_to(TESTS).parts[0]
        markers, limit = KINDS.get(folder, ((), None))
        for marker in markers:
            item.add_marker(getattr(pytest.mark, marker))
        declared = item.get_closest_marker("timeout")
        if limit and declared is None:
            item.add_marker(pytest.mark.timeout(limit))
        elif declared is not None and declared.args:
            longest[str(item.fspath)] = max(longest.get(str(item.fspath), 0), float(declared.args[0]))
    # Longest first (scripts/test.sh passes --no-loadscope-reorder, so the two processes take whole files in
    # this order): files with a test that declares a longer limit, then the browser, integration and unit
    # folders. Short files last fill the gaps; a long file started last would leave one process idle.
    def weight(item):
        folder = Path(str(item.fspath)).resolve().relative_to(TESTS).parts[0]
        rank = FOLDER_ORDER.index(folder) if folder in FOLDER_ORDER else len(FOLDER_ORDER)
        return (-longest.get(str(item.fspath), 0), rank)

    items.sort(key=weight)   # stable: a file's tests keep their order



@pytest.fixture(scope="session")
def app_settings(tmp_path_factory):
    """Settings for the shared test app: its own runs folder, 1 job at a time, small limits."""
    from tl_ui.core.settings import Settings

    # the advisor ranks the models on 40 of the sample's 300 digits: seconds, not minutes, on 2 cores
    return Settings(runs_dir=tmp_path_factory.mktemp("runs"), max_jobs=1, max_upload_mb=TEST_UPLOAD_MB,
                    max_queued_per_user=3, advisor_max_examples=40)


@pytest.fixture(scope="session")
def launched_server(app_settings):
    from tl_ui.app.server import start_in_thread
    from tl_ui.app.webapp import build_app

    server = start_in_thread(build_app(app_settings), settings=app_settings)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def launched_app(launched_server):
    """Base URL of the running app, e.g. 'http://127.0.0.1:54321/'."""
    return launched_server.url


@pytest.fixture
def client_factory(launched_app):
    """New gradio_client sessions against the shared app (each has its own session cookie)."""
    from gradio_client import Client

    def make(**kwargs):
        kwargs.setdefault("verbose", False)
        kwargs.setdefault("analytics_enabled", False)
        return Client(launched_app, **kwargs)

    return make


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The shipped sample digits (300 images, 10 classes), unpacked once per test module."""
    from tl_ui.data import load_dataset, sample_dataset_path

    return load_dataset(str(sample_dataset_path("image")), tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """The shipped sample reviews (fresh / rotten), read once per test module."""
    from tl_ui.data import load_dataset, sample_dataset_path

    return load_dataset(str(sample_dataset_path("text")), tmp_path_factory.mktemp("reviews"))


# -- mutation check (issue 38): do the accuracy tests notice a model that learned nothing? ---------------
def pytest_addoption(parser):
    parser.addoption("--mutant", choices=["random-head"], default=None,
                     help="break the engine on purpose, in this process and every process it starts: 'random-head' replaces every fitted "
                          "linear-probe head with random weights; the accuracy tests must then fail")


def pytest_configure(config):
    if config.getoption("--mutant") == "random-head":
        # before collection: modules that copy os.environ at import (a CLI test's ENV) copy the mutant too
        from tests.helpers.mutants import spread_to_subprocesses

        spread_to_subprocesses("random-head")   # training and inference workers, servers, CLI processes


@pytest.fixture(autouse=True, scope="session")
def _mutant(request):
    if request.config.getoption("--mutant") != "random-head":
        yield
        return
    from tests.helpers.mutants import random_head
    from tl_ui.engine.tasks import single_label

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(single_label, "fit_head", single_label.fit_head)   # restored afterwards
        random_head(single_label)
        yield
