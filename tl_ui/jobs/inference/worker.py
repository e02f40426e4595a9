"""The inference worker process (started by tl_ui/jobs/inference/pool.py through the one supervisor).

It reads its configuration (first line of stdin), does what every worker does first (the server's
environment, end with the server, its priority: tl_ui/jobs/caps.py), imports torch and the engine,
caps its memory, says it is ready, then answers requests (tl_ui/jobs/inference/protocol.py) on a
few threads until its stdin closes; then it finishes what it has begun and exits. A request that
fails says why in one sentence (its input, a missing extra, a model too big for the cap, memory);
an allocation that fails under the cap fails that request only, and the worker goes on.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

from tl_ui.jobs.caps import cap_memory, looks_like_memory, prepare_process
from tl_ui.jobs.inference.protocol import CANCEL, Code, InferenceError, json_default
from tl_ui.jobs.supervisor import Ending, ended_message, reply_writer

log = logging.getLogger("tl_ui.inference_worker")

# Imported before the memory cap and before "ready": a request does not wait for them (1-5 s here).
PRELOAD = ("torch", "timm", "timm.data", "transformers", "safetensors.torch", "tl_ui.engine.inference.predict",
           "tl_ui.engine.inference.familiarity", "tl_ui.trust")
PRELOAD_OPTIONAL = ("pytorch_grad_cam", "captum.attr")   # the 'explain' extra, when installed


class Server:
    def __init__(self, config: dict, send):
        from tl_ui.jobs.inference.kept import KeptModels

        self.send = send
        self.memory_gb = float(config.get("memory_gb") or 0)
        self.models = KeptModels(config["runs_root"], int(float(config.get("models_mb") or 0) * 1024 ** 2),
                                 self.memory_gb)
        self.pool = ThreadPoolExecutor(max_workers=max(1, int(config.get("threads") or 2)),
                                       thread_name_prefix="tl-inference")
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def submit(self, message: dict) -> None:
        rid = str(message.get("id"))
        if message.get("verb") == CANCEL:
            with self._lock:
                flag = self._cancel.get(rid)
            if flag is not None:
                flag.set()
            return
        with self._lock:
            self._cancel[rid] = threading.Event()
        self.pool.submit(self._answer, rid, message)

    def _answer(self, rid: str, message: dict) -> None:
        from tl_ui.jobs.inference.verbs import VERBS, Request

        with self._lock:
            cancelled = self._cancel[rid]
        request = Request(rid, cancelled, lambda done, total, text: self.send(
            {"id": rid, "kind": "progress", "done": int(done), "total": int(total), "message": str(text)}))
        self.send({"id": rid, "kind": "started"})
        try:
            verb = VERBS.get(str(message.get("verb")))
            if verb is None:
                raise InferenceError(Code.INTERNAL, f"Unknown request '{message.get('verb')}'.")
            value = verb(self.models, dict(message.get("args") or {}), request)
            reply = {"id": rid, "kind": "result", "value": value}
        except InferenceError as exc:
            reply = {"id": rid, "kind": "error", "code": exc.code, "message": str(exc), "missing": exc.missing}
        except ImportError as exc:   # an optional extra (grad-cam, captum)
            reply = {"id": rid, "kind": "error", "code": Code.MISSING_EXTRA, "message": str(exc),
                     "missing": exc.name or str(exc)}
        except MemoryError:
            reply = self._memory(rid)
        except ValueError as exc:   # PredictError and the engine's other plain-words errors
            reply = {"id": rid, "kind": "error", "code": Code.USER, "message": str(exc)}
        except Exception as exc:   # noqa: BLE001
            if looks_like_memory(f"{type(exc).__name__}: {exc}"):
                reply = self._memory(rid)
            else:
                log.error("request %s (%s) failed:\n%s", rid, message.get("verb"), traceback.format_exc())
                reply = {"id": rid, "kind": "error", "code": Code.INTERNAL,
                         "message": f"Answering failed unexpectedly ({type(exc).__name__}); the details are in the "
                                    "server log."}
        finally:
            with self._lock:
                self._cancel.pop(rid, None)
        try:
            self.send(reply)
        except (TypeError, ValueError):   # an answer that is no JSON: a bug, said as one
            log.exception("request %s: the answer cannot be sent", rid)
            self.send({"id": rid, "kind": "error", "code": Code.INTERNAL,
                       "message": "Answering failed unexpectedly; the details are in the server log."})

    def _memory(self, rid: str) -> dict:
        import gc

        gc.collect()
        return {"id": rid, "kind": "error", "code": Code.MEMORY,
                "message": ended_message("inference", Ending.MEMORY, gb=self.memory_gb)}

    def drain(self) -> None:
        self.pool.shutdown(wait=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    send = reply_writer(default=json_default)

    config = json.loads(sys.stdin.readline() or "{}")
    prepare_process(config)
    for name in PRELOAD:
        importlib.import_module(name)
    for name in PRELOAD_OPTIONAL:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if int(config.get("torch_threads") or 0) > 0:
        import torch

        torch.set_num_threads(int(config["torch_threads"]))
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()   # "Loading weights" bars: the server log is for people
    how = cap_memory(float(config["memory_gb"])) if float(config.get("memory_gb") or 0) > 0 else "none"
    server = Server(config, send)
    send({"ready": True, "pid": os.getpid(), "memory_cap": how})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            server.submit(message)
    server.drain()   # stdin closed: finish what was asked, then go
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
