"""The advisor in a process of its own (the web process never runs a model): payload as JSON on
stdin, one JSON line per event on stdout: {"kind": "progress", "done", "total", "message"}, then
{"kind": "result", "rows": [...]} or {"kind": "error", "message"}.

Started by tl_ui.service.advise; the dataset arrives as plain data (no pickle), the owner's
embedding cache as its record, and the worker caps its own memory like a training worker."""
from __future__ import annotations

import json
import os
import sys


def _say(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def run(payload: dict) -> dict:
    from tl_ui.core.config import RunConfig
    from tl_ui.data import LabelledDataset
    from tl_ui.engine.advisor.ranking import advise

    dataset = LabelledDataset(**payload["dataset"])
    config = RunConfig.from_dict(payload["config"]) if payload.get("config") else None
    kept: dict = {}
    rows = advise(dataset, base_config=config, max_examples=int(payload.get("max_examples") or 0),
                  cache=payload.get("embedding_cache"), keep=kept,
                  on_progress=lambda done, total, message: _say(
                      {"kind": "progress", "done": done, "total": total, "message": message}))
    return {"kind": "result", "rows": rows, "map": best_model_map(rows, kept, config.seed if config else 0)}


def best_model_map(rows: list[dict], kept: dict, seed: int = 0):
    """The data map (tl_ui.engine.advisor.data_map) in the best-ranked model's embeddings, or None."""
    from tl_ui.engine.advisor.data_map import data_map

    best = next((r for r in rows if r.get("knn_accuracy") is not None), None)
    if best is None or best["model_id"] not in kept.get("features", {}):
        return None
    ranked = kept["dataset"]
    result = data_map(kept["features"][best["model_id"]], ranked.labels, ranked.items, seed=seed)
    return {**result, "model_id": best["model_id"], "display_name": best.get("display_name") or best["model_id"]}


def main() -> None:
    payload = json.load(sys.stdin)
    sys.stdin.close()
    from tl_ui.jobs.caps import cap_memory, prepare_process

    prepare_process(payload)
    import torch

    if payload.get("memory_gb") and not torch.cuda.is_available():
        cap_memory(float(payload["memory_gb"]), None)
    try:
        _say(run(payload))
    except MemoryError:
        _say({"kind": "error", "message": "Ranking the models ran out of memory. Try with fewer examples."})
    except ValueError as exc:   # a dataset the advisor cannot rank (the message says why)
        _say({"kind": "error", "message": str(exc)})
    except Exception as exc:   # noqa: BLE001
        import traceback

        traceback.print_exc(file=sys.stderr)
        _say({"kind": "error", "message": f"Ranking the models failed unexpectedly ({type(exc).__name__})."})
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
