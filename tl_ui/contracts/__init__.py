"""What crosses processes and files, typed: run states, the engine's events (events.jsonl) and the
pydantic models of the run folder's JSON files (metrics.json, status.json, the export's transfer_lab.json; run.json is
`tl_ui.core.config.RunConfig`). No torch, no gradio. Their JSON Schemas are generated into
docs/contracts.md (`python -m tl_ui.core.schema_doc`)."""
from tl_ui.contracts.base import Block
from tl_ui.contracts.events import Event, event_from_dict, read_event
from tl_ui.contracts.labelling import LabelProvenance
from tl_ui.contracts.manifest import ExportManifest
from tl_ui.contracts.metrics import RunMetrics
from tl_ui.contracts.states import ACTIVE_STATES, DONE_STATES, RunState, run_state
from tl_ui.contracts.status import RunStatus
from tl_ui.contracts.validation import ValidationReport

__all__ = ["ACTIVE_STATES", "DONE_STATES", "Block", "Event", "ExportManifest", "LabelProvenance", "RunMetrics", "RunState",
           "RunStatus", "ValidationReport", "event_from_dict", "read_event", "run_state"]
