"""5. Peak memory of each strategy on each offline model: one fresh process per run
(`python -m bench.sections.memory MODALITY STRATEGY N STOP`), its VmHWM at the end."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, Events, RunFailed, child_env, log, require_finished


def run(cfg: dict) -> dict:
    from tl_ui.core.config import STRATEGIES, TEXT_ONLY_STRATEGIES

    out = {}
    for modality in ("image", "text"):
        for strategy in STRATEGIES:
            if modality != "text" and strategy in TEXT_ONLY_STRATEGIES:
                continue
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "bench.sections.memory", modality, strategy, str(cfg["n"]),
                                   str(cfg["stop_after_steps"])], cwd=ROOT, env=child_env(), capture_output=True,
                                  text=True, timeout=900)
            line = next((l for l in reversed(proc.stdout.splitlines()) if l.startswith("{")), None)
            key = f"{strategy}_{modality}"
            if proc.returncode != 0 or line is None:
                raise RunFailed(f"memory {key}: the measuring process failed ({proc.returncode}): "
                                f"{(proc.stderr or proc.stdout)[-1500:]}")
            out[key] = checked(json.loads(line), key, cfg["stop_after_steps"])
            log(f"memory {strategy}/{modality}: {out[key]} ({time.perf_counter() - t0:.0f} s)")
    return out


def checked(row: dict, key: str, stop_after_steps: int) -> dict:
    """A child's row when its run trained: finished, or stopped by this benchmark after its steps (the peak of
    training is reached by then); a refused or crashed run's memory is no strategy's peak."""
    require_finished(row, f"memory {key} ({row.get('n_examples')} examples)", stopped_ok=stop_after_steps > 0)
    if row.get("steps", 0) < max(stop_after_steps, 1):
        raise RunFailed(f"memory {key}: {row.get('steps', 0)} training steps, fewer than the "
                        f"{max(stop_after_steps, 1)} its peak needs")
    return row


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def child(modality: str, strategy: str, n: int, stop_after_steps: int = 0) -> None:
    """One run in this (fresh) process; prints peak RSS and the RSS after the imports as one JSON line.

    `stop_after_steps` > 0 stops the run after that many optimisation steps (the peak of training is reached
    by then: activations, gradients and the optimiser state all exist after the first step), which skips
    validation and the export; 0 runs one whole epoch, validation and export included."""
    import resource

    import accelerate  # noqa: F401  (the engine imports it lazily; count it as an import)
    import torch

    from bench.data import MODEL_FOR, sample_dataset
    from tl_ui.core.config import RunConfig
    from tl_ui.engine import train_run

    ds = sample_dataset(modality)
    after_imports = _status_kb("VmRSS") / 1024
    config = RunConfig(model_id=MODEL_FOR[modality], strategy=strategy, epochs=1, max_examples=n,
                       early_stopping_patience=0)
    ev = Events()
    stop = (lambda: stop_after_steps > 0 and len(ev.of("step")) >= stop_after_steps
            and strategy != "linear_probe")  # the probe's peak is the embedding pass: let it finish
    with tempfile.TemporaryDirectory(prefix="tlbench-mem-") as d:
        res = train_run(config, Path(d) / "run", on_event=ev, dataset=ds, should_stop=stop)
    # VmHWM, not ru_maxrss: after fork+exec, ru_maxrss still holds the parent's RSS at the fork (the benchmark
    # process itself, gigabytes), while VmHWM is this process's own high-water mark.
    print(json.dumps({"peak_rss_mb": round(_status_kb("VmHWM") / 1024), "rss_after_imports_mb": round(after_imports),
                      "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "status": res.status, "message": res.message, "batch_size": config.batch_size, "n_examples": n,
                      "steps": len(ev.of("step")), "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    child(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
