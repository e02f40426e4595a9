"""Share & export a finished run (issue 39), for the page and the API: the ONNX folder (fp32 and int8, measured)
and the Gradio Space folder are made in an inference worker of its own (`InferencePool.call_long`, verb
`export_onnx`: the web process loads no model), into the run's exports/onnx/ and exports/space/ folders
(tl_ui/core/runfolder.py); the download is an owner-only zip of that folder (service/private_files.py).
Pushing to the Hub: service/hub_push.py."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional

from tl_ui.core.runfolder import RunFolder
from tl_ui.jobs.inference.protocol import InferenceError
from tl_ui.service.errors import UserError

BUSY_MESSAGE = "Another long request (a check on new data, a batch, an export or the model advisor) is running. " \
               "Try again in a minute."


class Sharing:
    def __init__(self, inference, private):
        self.inference, self.private = inference, private

    def export(self, owner, run: RunFolder, *, int8: bool = True, space: bool = False,
               on_progress: Callable[[int, int, str], None] = lambda *_: None, should_stop=lambda: False) -> dict:
        """{"report": onnx_report.json's dict (None for a Space), "sentence": int8's sentence or None,
        "zip": an owner-only zip of the folder}. Raises UserError with a plain sentence."""
        args = {"run_dir": str(run.path.resolve()), "int8": bool(int8), "space": bool(space)}
        try:
            answer = self.inference.call_long(owner.id, "export_onnx", args, kind="inference",
                                              busy_message=BUSY_MESSAGE, on_progress=on_progress,
                                              should_stop=should_stop)
        except InferenceError as exc:
            raise UserError(str(exc)) from None
        folder = Path(answer["folder"])
        report = answer.get("report")
        return {"report": report, "sentence": ((report or {}).get("int8") or {}).get("sentence"),
                "zip": str(self._zip(owner, folder, f"{run.id}-{'space' if space else 'onnx'}"))}

    def report(self, run: RunFolder) -> Optional[dict]:
        return run.read_onnx_report()

    def _zip(self, owner, folder: Path, name: str) -> Path:
        target = self.private.new_folder(owner, "export")
        archive = shutil.make_archive(str(target / name), "zip", root_dir=str(folder))
        Path(archive).chmod(0o600)
        return Path(archive)
