"""The shelf's parameter counts for one model, in a process of its own: `python -m
tl_ui.jobs.shelf_facts_worker --count MODEL_ID [--modality text|image] [--max-params-m M] [--memory-gb G]`
prints {"kind": "result", "facts": ...} (tl_ui/engine/planning/shelf_facts.py counts) or {"kind": "error",
"message"} as one JSON line. tl_ui/service/shelf_facts.py runs it for a Hub model, once, then caches;
capped and below the page's priority, like a run's worker."""
from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="One model's parameter counts under every strategy, as JSON.")
    parser.add_argument("--count", metavar="MODEL_ID", required=True, help="the shelf id or Hub id to count")
    parser.add_argument("--modality", default=None, help="a free-text Hub id's modality (image or text)")
    parser.add_argument("--max-params-m", type=float, default=None, help="refuse a Hub model larger than this")
    parser.add_argument("--memory-gb", type=float, default=0.0, help="cap this process's memory, as a run's worker")
    args = parser.parse_args(argv)
    if args.memory_gb > 0:
        from tl_ui.jobs.caps import cap_memory

        import torch  # noqa: F401  (mapped before the cap, as a run's worker does)

        cap_memory(args.memory_gb, None)
    os.nice(5)
    from tl_ui.core.catalog import get_model
    from tl_ui.engine.planning.shelf_facts import model_facts

    try:
        facts = model_facts(get_model(args.count, args.modality), max_params_m=args.max_params_m)
        print(json.dumps({"kind": "result", "facts": facts}), flush=True)
    except Exception as exc:   # the reason, in one line, for the server's log
        print(json.dumps({"kind": "error", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
