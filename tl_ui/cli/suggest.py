"""`python -m tl_ui suggest --pool POOL --labels labels.csv [--model ID] --n N [--json]`: which unlabelled
items to label next (issue 41).

Goes through the service (tl_ui/service/labelling.py) exactly as the page does: the pool's embeddings
and the probe are computed in an inference worker, the embeddings kept in an embedding cache (default:
`<TL_RUNS_DIR>/cli/embeddings`), so a second call on the same pool embeds nothing. `--json` prints a
list of N {item, score, reason, guess}: items of POOL not in labels.csv, best first (the contract);
`--curve` adds the learning curve to stderr."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

EXIT_BAD_INPUT = 2
CONTRACT_KEYS = ("item", "score", "reason", "guess")


def add_suggest_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "suggest", help="which unlabelled items to label next (the model asks for what it learns most from)",
        description="Rank the unlabelled items of a pool: a linear probe on the labels so far says which items "
                    "it is torn about, mixed with diversity so that near-duplicates are not asked twice; until "
                    "every class has 2 labels, by diversity alone.")
    parser.add_argument("--pool", required=True, help="zip or folder of images, or a table of texts")
    parser.add_argument("--labels", help="CSV with columns item,label (item: a path inside the pool, or 'row N' "
                                         "of a table); may be absent or empty")
    parser.add_argument("--classes", help="comma-separated class names (besides those in --labels)")
    parser.add_argument("--model", help="shelf id (default: efficientnet_lite0 for images, minilm_l6 for texts)")
    parser.add_argument("--n", type=int, default=10, help="how many suggestions (default 10)")
    parser.add_argument("--text-column", help="table column holding the texts (default: detected)")
    parser.add_argument("--cache", help="embedding cache folder (default: <TL_RUNS_DIR>/cli/embeddings; "
                                        "'none': no cache)")
    parser.add_argument("--curve", action="store_true", help="also print the learning curve (stderr)")
    parser.add_argument("--json", action="store_true", help="print JSON: a list of {item, score, reason, guess}")
    parser.set_defaults(handler=suggest_command)
    return parser


def suggest_command(args: argparse.Namespace) -> int:
    from tl_ui.core.settings import load_settings
    from tl_ui.data import DataError
    from tl_ui.data.label_store import read_labels_table
    from tl_ui.data.unlabelled import load_inputs
    from tl_ui.jobs.inference import InferenceCaps, InferencePool
    from tl_ui.service.errors import UserError
    from tl_ui.service.labelling import Labelling

    settings = load_settings([])
    workdir = tempfile.mkdtemp(prefix="tl-cli-pool-")
    pool = InferencePool(InferenceCaps.from_settings(settings), workdir)
    try:
        inputs = load_inputs(args.pool, workdir, limits=settings.limits(), text_column=args.text_column)
        labelled, warnings = ({}, [])
        if args.labels and Path(args.labels).exists() and Path(args.labels).stat().st_size:
            labelled, warnings = read_labels_table(args.labels, pool=inputs.names)
        elif args.labels and not Path(args.labels).exists():
            raise UserError(f"The labels file '{args.labels}' does not exist. Give an existing CSV with columns "
                            "item,label, or leave --labels out to start from nothing.")
        for warning in [*inputs.warnings, *warnings]:
            print(f"note: {warning}", file=sys.stderr)
        classes = [c.strip() for c in (args.classes or "").split(",") if c.strip()]
        cache = None
        if (args.cache or "").lower() != "none" and settings.embedding_cache_mb > 0:
            folder = Path(args.cache) if args.cache else Path(settings.runs_dir) / "cli" / "embeddings"
            cache = {"dir": str(folder.resolve()), "max_bytes": int(settings.embedding_cache_mb * 1024 * 1024)}

        def progress(done: int, total: int, message: str) -> None:
            if not args.json and total:
                print(f"\r{message} ({done}/{total})", end="", file=sys.stderr)

        answer = Labelling(settings, pool).suggest(inputs, labelled, classes, n=args.n, model_id=args.model,
                                                   embedding_cache=cache, curve=bool(args.curve),
                                                   on_progress=progress)
    except (UserError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        pool.close()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    rows = [{k: row.get(k) for k in CONTRACT_KEYS} for row in answer.get("suggestions") or []]
    if args.curve and answer.get("curve"):
        for point in answer["curve"]["points"]:
            low, high = point["accuracy_ci"]
            print(f"{point['n']:5d} labels: accuracy {point['accuracy']:.3f} ({low:.3f}-{high:.3f})", file=sys.stderr)
        print(answer["curve"]["sentence"], file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not args.json:
        print(file=sys.stderr)
    for row in rows:
        guess = f"guess {row['guess']}" if row["guess"] is not None else "no guess yet"
        print(f"{row['score']:.3f}  {row['item']}  ({guess}) {row['reason']}")
    return 0
