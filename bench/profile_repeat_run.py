"""cProfile of a repeat linear-probe run in one process: the sample digits, the app's defaults, the
second run reading every embedding from the first's cache (what `bench.sections.iterate --only-app`
times through the app). Prints both runs' wall seconds and the profile's top functions.

    python bench/profile_repeat_run.py
"""
from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from bench.harness import require_finished
    from tl_ui.core.config import RunConfig
    from tl_ui.data import load_dataset, sample_dataset_path
    from tl_ui.engine import train_run
    from tl_ui.engine.probe.embedding_cache import EmbeddingCache

    with tempfile.TemporaryDirectory(prefix="tl-profile-") as d:
        work = Path(d)
        dataset = load_dataset(str(sample_dataset_path("image")), str(work / "data"))
        cache = EmbeddingCache(work / "cache")
        seconds = []
        for name in ("first", "repeat"):
            started = time.perf_counter()
            result = require_finished(train_run(RunConfig(model_id="efficientnet_lite0"), work / name, dataset=dataset,
                                                embedding_cache=cache), f"profile: {name} run")
            seconds.append(time.perf_counter() - started)
            print(f"{name} run: {seconds[-1]:.2f} s, {result.status}, accuracy {result.metrics.get('accuracy')}")
        profile = cProfile.Profile()
        profile.enable()
        require_finished(train_run(RunConfig(model_id="efficientnet_lite0"), work / "profiled", dataset=dataset,
                                   embedding_cache=cache), "profile: the profiled run")
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
