"""A worker module for tests/integration/test_forkserver.py: reads one JSON line on stdin and prints what a
worker sees of its process ({"env", "cwd", "argv", "ppid", "sid", "torch_loaded", "got"}), then exits as
the line says ({"exit": code} or {"raise": true}); {"wait": true} waits for stdin's end first."""
from __future__ import annotations

import json
import os
import sys


def main() -> None:
    asked = json.loads(sys.stdin.readline() or "{}")
    print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv, "ppid": os.getppid(),
                      "sid": os.getsid(0), "pid": os.getpid(), "torch_loaded": "torch" in sys.modules,
                      "got": asked}), flush=True)
    if asked.get("wait"):
        sys.stdin.read()
    if asked.get("raise"):
        raise RuntimeError("asked to fail")
    sys.exit(int(asked.get("exit", 0)))
