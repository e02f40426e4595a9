"""4. Cold start: `python app.py` to HTTP 200 on `/`, which heavy packages are imported by then, and the
import-time breakdown of `import app`."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, child_env, free_port, log, rnd, stop_process, summary, wait_http

HEAVY = ("torch", "transformers", "timm", "peft", "accelerate", "sklearn")


def run(cfg: dict) -> dict:
    if not (ROOT / "app.py").exists():
        return {"skipped": "app.py not available"}
    out: dict = {"start_to_http_200_s": [], "runs": []}
    for i in range(cfg["repeats"]):
        r = _once(importtime=False)
        out["runs"].append(r)
        if r.get("seconds") is not None:
            out["start_to_http_200_s"].append(r["seconds"])
        log(f"cold start {i + 1}: {r}")
    # once more under -X importtime: which modules were imported by the time the page answered
    r = _once(importtime=True)
    tree = parse_importtime(r.pop("importtime_lines", []))
    out["with_importtime"] = r
    out["heavy_imported_before_page"] = {m: (m in tree["all_modules"]) for m in HEAVY}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=300)
    imp = parse_importtime(proc.stderr.splitlines())
    out["import_app"] = {"total_s": imp["total_s"], "top_level": imp["top"][:15],
                         "imports": {m: (m in imp["all_modules"]) for m in ("torch", "transformers", "timm", "gradio",
                                                                               "pandas", "sklearn")}}
    s = out["start_to_http_200_s"]
    out["seconds"] = summary(s) if s else None
    return out


def _once(importtime: bool) -> dict:
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="tlbench-cold-"))
    env = child_env(TL_PORT=str(port), TL_RUNS_DIR=str(work / "runs"), TL_OFFLINE="1")
    cmd = [sys.executable] + (["-X", "importtime"] if importtime else []) + ["app.py"]
    err_path = work / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        lines: list = []
        try:
            seconds = wait_http(f"http://127.0.0.1:{port}/", 180, proc)
            if importtime:
                time.sleep(0.2)
                lines = err_path.read_text(errors="replace").splitlines()
        finally:
            stop_process(proc)
    result = {"seconds": rnd(seconds, 2), "exit_code_if_died": proc.returncode if seconds is None else None}
    if seconds is None:
        result["stderr_tail"] = err_path.read_text(errors="replace")[-1500:]
    if importtime:
        result["importtime_lines"] = lines
    shutil.rmtree(work, ignore_errors=True)
    return result


_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def parse_importtime(lines: list[str]) -> dict:
    """Packages by cumulative import time (from `python -X importtime`).

    `top` lists top-level packages (no dot in the name) wherever they were first imported, with their
    cumulative time (which includes what they import in turn, so the rows overlap); `total_s` is the sum
    of the outermost imports."""
    packages, names, total = {}, set(), 0
    for line in lines:
        m = _IMPORTTIME.match(line)
        if not m:
            continue
        cumulative, indent, name = int(m.group(2)), len(m.group(3)), m.group(4)
        names.add(name.split(".")[0])
        names.add(name)
        if indent <= 1:
            total += cumulative
        if "." not in name and name not in packages:
            packages[name] = cumulative
    top = sorted(packages.items(), key=lambda x: -x[1])
    return {"total_s": rnd(total / 1e6, 2), "top": [[n, rnd(c / 1e6, 3)] for n, c in top if n != "app"],
            "all_modules": names}
