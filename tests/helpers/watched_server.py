"""Run `app.py` (the real server, in this process) and answer one question from outside: which modules
has it imported? For tests/browser/test_browser_first_upload.py, which asserts that the web process never
imports torch or transformers.

    python tests/helpers/watched_server.py WATCH_DIR app.py --port N --runs-dir DIR

While the server runs, a thread looks for `WATCH_DIR/ask`; when it appears, it writes the names in
`sys.modules` to `WATCH_DIR/modules.json` (atomically) and removes `ask`. Nothing else is changed:
the app runs exactly as `python app.py ...` would.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time
from pathlib import Path


def _answer(watch: Path) -> None:
    ask, out = watch / "ask", watch / "modules.json"
    while True:
        if ask.exists():
            tmp = watch / ".modules.json.tmp"
            tmp.write_text(json.dumps(sorted(sys.modules)), encoding="utf-8")
            os.replace(tmp, out)
            ask.unlink(missing_ok=True)
        time.sleep(0.1)


def main() -> None:
    watch, script = Path(sys.argv[1]), sys.argv[2]
    watch.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_answer, args=(watch,), name="modules-watch", daemon=True).start()
    sys.argv = [script, *sys.argv[3:]]
    sys.path[0] = str(Path(script).resolve().parent)   # as `python app.py` would have it (not tests/)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
