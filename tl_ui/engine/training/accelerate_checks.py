"""accelerate (1.15) asks importlib whether the optional `lomo_optim` package is installed twice on
every optimizer step (`AcceleratedOptimizer.step` calls `is_lomo_available()`, which runs
`importlib.util.find_spec` over sys.path each time): 0.2 ms a call, 0.29 s of a 2.5 s repeat probe
run's 720 head steps (cProfile, docs/benchmarks.md "Iterate in seconds"). A package does not appear
in the middle of a run, so each process asks once."""
from __future__ import annotations

import functools


def cache_optional_package_checks() -> None:
    """Replace the check in the accelerate modules that call it per step with a cached one (idempotent;
    a release that renamed it is left alone)."""
    import accelerate.accelerator
    import accelerate.optimizer

    for module in (accelerate.accelerator, accelerate.optimizer):
        check = getattr(module, "is_lomo_available", None)
        if callable(check) and not hasattr(check, "cache_info"):
            module.is_lomo_available = functools.lru_cache(maxsize=None)(check)
