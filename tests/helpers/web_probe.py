"""A Transfer Lab server in a process of its own, for the test that looks inside the process serving
the page (tests/integration/test_web_process.py).

    python -m tests.helpers.web_probe RUNS_DIR    (from the repository root)

starts the app and prints {"url", "pid"} as one JSON line; then reads commands, one per line:
"walk" goes through every inference feature with the page's own handlers (tl_ui/ui/handlers.py)
in this process (train an image and a text run, try-it, "Why this answer?", the mistake maps, the
model advisor, the Strategy step's plan, Results) and prints what each gave; "report" prints what
this process has imported and its memory (VmRSS, VmHWM); "quit" stops the server."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

MODEL_LIBRARIES = ("torch", "transformers", "timm", "torchvision", "accelerate", "peft", "captum", "pytorch_grad_cam",
                   "sentence_transformers", "safetensors.torch")


class Request:
    """What the page's handlers read of a Gradio request: one anonymous page session."""
    cookies: dict = {}
    headers: dict = {}
    username = None
    session_hash = "web-probe-page"
    client = None


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return -1.0


def report() -> dict:
    maps = Path("/proc/self/maps").read_text()
    return {"modules": sorted(name for name in MODEL_LIBRARIES if name in sys.modules),
            "libtorch_mapped": "libtorch" in maps, "rss_mb": round(_status_mb("VmRSS"), 1),
            "peak_rss_mb": round(_status_mb("VmHWM"), 1)}


def _train(lab, owner, modality: str, options: dict) -> str:
    sample = lab.load_sample(owner, modality)
    model = "efficientnet_lite0" if modality == "image" else "minilm_l6"
    job = lab.start_run(owner, sample.dataset, sample.data_path, model, options)
    done = lab.runner.wait(job.id, timeout=900)
    assert done.state == "finished", done.message
    return job.id


def walk(lab) -> dict:
    from tl_ui.ui.handlers import Handlers
    from tl_ui.ui.state import SessionState

    h, request = Handlers(lab), Request()
    owner, _ = lab.bind_page(request, None)
    image_run = _train(lab, owner, "image", {"strategy": "linear_probe", "max_examples": 40, "image_size": 64,
                                              "seed": 2})
    text_run = _train(lab, owner, "text", {"strategy": "linear_probe", "max_examples": 40, "seed": 2})
    run = lab.run(owner, image_run)
    digit = str(run.path / next(m["file"] for m in run.metrics()["mistakes"] if m.get("file")))
    out: dict = {}
    state = SessionState()
    out["show_run"] = sorted(h.show_run(image_run, state, request))            # Results; preloads the model
    out["try_image"] = h.try_it(digit, None, "", state, request)["try_output"]["value"]
    out["why_image"] = h.explain_it(digit, None, "", state, request)["try_why"][:40]
    shown = h.explain_mistakes(state, request)
    out["mistake_maps"] = len(shown.get("mistakes_why_gallery", {}).get("value") or [])
    text_state = SessionState(shown_run=text_run)
    out["try_text"] = h.try_it(None, None, "A warm, funny film.", text_state, request)["try_output"]["value"]
    out["why_text"] = h.explain_it(None, None, "A warm, funny film.", text_state, request)["try_why"][:40]
    digits = lab.load_sample(owner, "image").dataset
    advised = h.advise(SessionState(dataset=digits), "header", 32, request)
    out["advisor_models"] = list(advised["advisor_table"]["value"]["Model"])
    plan = lab.plan("efficientnet_lite0", {"strategy": "partial"}, digits)
    out["plan"] = {"share": plan["share"], "seconds": plan["seconds"]}
    return out


def main() -> None:
    from tl_ui.app.server import start_in_thread
    from tl_ui.core.settings import Settings
    from tl_ui.app.webapp import build_app

    settings = Settings(runs_dir=Path(sys.argv[1]), max_jobs=1, advisor_max_examples=30, offline=True)
    server = start_in_thread(build_app(settings), settings=settings)
    print(json.dumps({"url": server.url, "pid": os.getpid()}), flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "walk":
                print(json.dumps(walk(server.lab), default=str), flush=True)
            elif command == "report":
                print(json.dumps(report()), flush=True)
            elif command == "quit":
                break
    finally:
        server.stop()


if __name__ == "__main__":
    main()
