"""Engine mutants for the mutation check (issue 38): break the engine on purpose and see the accuracy
tests fail. `pytest --mutant=random-head` applies the mutant in the test process and, through
`mutant_site/sitecustomize.py` on PYTHONPATH, in every process it starts (training and inference
workers, servers), so runs trained in a worker are broken too."""
from __future__ import annotations

import os
from pathlib import Path

MUTANT_ENV = "TL_TEST_MUTANT"
SITE_DIR = Path(__file__).with_name("mutant_site")


def random_head(module) -> None:
    """Replace `module.fit_head` (tl_ui.engine.tasks.single_label) by one that fits, then throws the
    fitted weights away for random ones: a model that learned nothing."""
    import dataclasses

    import numpy as np

    real_fit_head = module.fit_head

    def fit_random_head(*args, **kwargs):
        fitted = real_fit_head(*args, **kwargs)
        rng = np.random.default_rng(0)
        return dataclasses.replace(fitted, weight=rng.normal(size=fitted.weight.shape).astype(np.float32),
                                   bias=rng.normal(size=fitted.bias.shape).astype(np.float32))

    module.fit_head = fit_random_head


def spread_to_subprocesses(name: str) -> None:
    """Every process started from now on (it inherits the environment) loads the mutant too."""
    os.environ[MUTANT_ENV] = name
    paths = [str(SITE_DIR), str(SITE_DIR.parents[2])]   # the hook, and the repository for `tests.helpers`
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
