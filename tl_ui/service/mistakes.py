"""What the model looked at in its most confident mistakes: Grad-CAM overlays of the run's own
metadata-free mistake previews (never the uploaded originals), towards the class it wrongly chose,
drawn by an inference worker (one request, one map after the other) and saved in the owner's
private folder for the page to show."""
from __future__ import annotations

import base64
from pathlib import Path

MAX_OVERLAYS = 6   # each is a forward and a backward pass of the model


def mistake_overlays(lab, owner, run_id: str, limit: int = MAX_OVERLAYS) -> list[dict]:
    """[{"path": PNG in the owner's private folder, "mistake": the metrics.json entry}], most confident
    mistake first. Raises the service's UserError for a run without a model or for texts."""
    from tl_ui.service.errors import UserError

    run = lab.run(owner, run_id)   # the asker's own run: checked before any request
    if not run.has_model:
        raise UserError("This run has no finished model. Pick a run that finished.")
    if run.modality() != "image":
        raise UserError("Maps of what the model looked at are drawn for images; for texts, use "
                        "'Why this answer?' in the try-it box.")
    mistakes = [m for m in (run.metrics() or {}).get("mistakes") or [] if m.get("file")][:limit]
    if not mistakes:
        return []
    drawn = lab.ask_inference(owner.id, "mistake_maps", {"run_dir": str(run.path.resolve()), "items": [
        {"file": str(m["file"]), "target": str(m.get("predicted"))} for m in mistakes]})
    folder = lab.private.new_folder(owner, "mistakes-why")
    out = []
    for k, (mistake, drawing) in enumerate(zip(mistakes, drawn["maps"])):
        path = Path(folder) / f"why-{k:02d}.png"
        path.write_bytes(base64.b64decode(drawing["overlay_png"]))
        out.append({"path": str(path), "mistake": mistake})
    return out
