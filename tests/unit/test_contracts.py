"""The typed contracts (tl_ui/contracts): run folders written before the models still load, the four
JSON files round-trip through their models, the event classes come back from events.jsonl, the
JSON Schemas in docs/contracts.md are current and accept real files, and the run states are the
enum, not string literals, wherever runs are queued, run, settled and served."""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from tl_ui.core.config import RunConfig
from tl_ui.contracts import ExportManifest, RunMetrics, RunState, RunStatus
from tl_ui.contracts.events import (EVENT_TYPES, EpochEnd, EventFormatError, RunFailed, RunStarted, StepEnd,
                                    event_from_dict, read_event)
from tl_ui.core.schema_doc import DOC, current_block, documented_models, render
from tl_ui.core.runfolder import RunFolder

REPO = Path(__file__).resolve().parents[2]
OLD = REPO / "tests" / "data" / "run_folders_v0"
OLD_RUNS = sorted(p.name for p in OLD.iterdir() if p.is_dir())
FILES = {"metrics.json": RunMetrics, "status.json": RunStatus, "transfer_lab.json": ExportManifest}


def old_run(tmp_path: Path, name: str) -> RunFolder:
    """A copy of a fixture laid out as a run folder (the manifest inside model/)."""
    run = RunFolder(tmp_path / name).create()
    for file in ("run.json", "status.json", "events.jsonl", "metrics.json"):
        shutil.copy(OLD / name / file, run.path / file)
    run.model_dir.mkdir()
    shutil.copy(OLD / name / "transfer_lab.json", run.model_dir / "transfer_lab.json")
    return run


def test_the_fixtures_cover_every_kind_of_run():
    assert {"digits", "digits-scratch", "lora", "mfd", "reviews"} <= set(OLD_RUNS)
    blocks = {name: set(json.loads((OLD / name / "metrics.json").read_text())) for name in OLD_RUNS}
    assert {"cross_validation", "pretraining_gain", "probe_fit"} <= blocks["digits"]
    assert "groups" in blocks["reviews"] and "multilabel" in blocks["mfd"] and "probe_fit" not in blocks["lora"]


@pytest.mark.parametrize("name", OLD_RUNS)
def test_run_folders_written_before_the_models_load_through_them(tmp_path, name):
    run = old_run(tmp_path, name)
    metrics, status, manifest = run.read_metrics(), run.read_status(), run.read_manifest()
    assert metrics is not None and status is not None and manifest is not None
    assert run.state() is RunState.FINISHED and status.state == "finished"
    raw = json.loads(run.metrics_json.read_text())
    assert metrics.accuracy == raw["accuracy"] and metrics.n_val == raw["n_val"]
    assert run.metrics() == raw and run.status() == json.loads((run.path / "status.json").read_text())
    assert manifest.classes == raw["classes"] and run.modality() == manifest.modality
    config = run.run_config()
    assert isinstance(config, RunConfig) and config.model_id == raw["model_id"] == metrics.model_id
    info = run.info()
    assert info.state is RunState.FINISHED and info.accuracy == raw["accuracy"] and info.n_reported == raw["n_val"]
    # every line of the old events.jsonl comes back as its class
    lines = [json.loads(line) for line in run.events_jsonl.read_text().splitlines()]
    events = run.events()
    assert len(events) == len(lines) and [e.to_dict() for e in events] == lines
    assert isinstance(run.start_event(), RunStarted) and run.start_event().classes == raw["classes"]


@pytest.mark.parametrize("name", OLD_RUNS)
@pytest.mark.parametrize("file", sorted(FILES))
def test_each_file_round_trips_through_its_model(name, file):
    data = json.loads((OLD / name / file).read_text())
    parsed = FILES[file].model_validate(data)
    assert parsed.to_dict() == data
    assert FILES[file].model_validate_json(json.dumps(parsed.to_dict())).to_dict() == data


@pytest.mark.parametrize("name", OLD_RUNS)
def test_run_json_round_trips_through_run_config(tmp_path, name):
    data = json.loads((OLD / name / "run.json").read_text())
    config = RunConfig.from_dict(data)
    written = config.to_dict()
    assert {k: v for k, v in written.items() if k in data} == data
    # settings added since these runs were written (e.g. issue 33's operating point) hold their defaults
    assert {k: v for k, v in written.items() if k not in data} == \
        {k: RunConfig.model_fields[k].get_default(call_default_factory=True) for k in written.keys() - data.keys()}
    config.save(tmp_path / "run.json")
    assert json.loads((tmp_path / "run.json").read_text()) == written
    assert RunConfig.load(tmp_path / "run.json") == config


def test_the_run_folder_writes_through_the_models(tmp_path):
    run = old_run(tmp_path, "digits")
    good = json.loads(run.metrics_json.read_text())
    # a block a newer engine adds travels through (extra keys are kept, at every level)
    newer = {**good, "newer_block": {"auc": 0.9}, "calibration": {**good["calibration"], "fit_note": "a note"}}
    run.write_metrics(newer)
    assert run.metrics()["newer_block"] == {"auc": 0.9} and run.read_metrics().calibration.fit_note == "a note"
    # a shape the readers do not expect is refused where it is written, not found later in the UI
    for drifted in ({**good, "accuracy_ci": [0.5]}, {k: v for k, v in good.items() if k != "per_class"},
                    {**good, "conformal": {"coverage": 0.9}}, {**good, "n_val": "many"}):
        with pytest.raises(ValidationError):
            run.write_metrics(drifted)
    assert run.read_metrics().newer_block == {"auc": 0.9}      # the refused writes left the file alone
    with pytest.raises(ValueError):
        run.set_status("done")
    with pytest.raises(ValidationError):
        run.set_status(RunState.UNKNOWN)


def test_a_file_that_does_not_fit_is_still_read_as_it_is(tmp_path, caplog):
    run = RunFolder(tmp_path / "hand-made").create()
    run.metrics_json.write_text(json.dumps({"accuracy": 0.8, "n_val": 10}))   # hand-edited, or very old
    assert run.read_metrics() is None and run.metrics() == {"accuracy": 0.8, "n_val": 10}
    assert "does not fit RunMetrics" in caplog.text
    assert run.state() is RunState.UNKNOWN and run.read_status() is None and run.info() is None


def test_run_state_is_a_string_enum():
    assert RunState.FINISHED == "finished" and RunState("stopped") is RunState.STOPPED
    assert {"finished": 1}[RunState.FINISHED] == 1 and RunState.FAILED in {"failed", "stopped"}
    assert f"{RunState.RUNNING}" == str(RunState.RUNNING) == "running"
    assert json.dumps({"state": RunState.QUEUED}) == '{"state": "queued"}'
    assert RunState.QUEUED.active and RunState.FAILED.done and not RunState.INTERRUPTED.done


def test_events_come_back_as_their_classes():
    started = RunStarted(run_id="r", model_id="m", strategy="lora", modality="text", classes=["a", "b"], n_train=8,
                         n_val=2, epochs=1, total_steps=4, trainable_params=10, total_params=100, device="cpu")
    step = StepEnd(epoch=1, step=1, total_steps=4, train_loss=0.7, learning_rate=1e-3, elapsed_s=1.0, eta_s=None)
    epoch = EpochEnd(epoch=1, epochs=1, step=4, train_loss=0.5, train_accuracy=0.8, val_loss=0.6, val_accuracy=0.5,
                     val_macro_f1=0.4, elapsed_s=2.0, eta_s=0.0, is_best=True)
    for event in (started, step, epoch, RunFailed(run_id="r", message="bad data")):
        assert event_from_dict(json.loads(json.dumps(event.to_dict()))) == event
    assert set(EVENT_TYPES) == {"started", "progress", "step", "epoch", "finished", "stopped", "failed", "trial"}
    newer = {**step.to_dict(), "grad_norm": 1.5}                    # a field a newer engine adds is left out
    assert event_from_dict(newer) == step
    with pytest.raises(EventFormatError, match="without learning_rate"):
        event_from_dict({k: v for k, v in step.to_dict().items() if k != "learning_rate"})
    assert read_event({"kind": "telemetry"}) is None and read_event([1]) is None


def test_events_jsonl_is_read_back_as_classes(tmp_path):
    run = RunFolder(tmp_path / "r").create()
    with run.open_event_log() as fh:
        fh.write(json.dumps(RunFailed(run_id="r", message="no").to_dict()) + "\n")
        fh.write('{"kind": "failed", "run_id": "r", "mess')             # a line cut by a crash
    assert run.events() == [RunFailed(run_id="r", message="no", time=run.events()[0].time)]


def test_the_schemas_in_the_docs_are_current():
    assert current_block(DOC.read_text(encoding="utf-8")) == render(), \
        "docs/contracts.md is out of date: run python -m tl_ui.core.schema_doc"


@pytest.mark.parametrize("name", OLD_RUNS)
def test_the_documented_schemas_accept_real_run_folders(name):
    jsonschema = pytest.importorskip("jsonschema")
    schemas = {file.split("/")[-1]: model.model_json_schema() for file, model in documented_models()}
    every_run = {"run.json", "status.json", "metrics.json", "transfer_lab.json"}
    # validation.json: tests/integration/test_external_validation.py; labels' provenance: tests/integration/test_labelling.py
    assert set(schemas) == every_run | {"validation.json", "<file>.provenance.json"}
    for file in every_run:
        jsonschema.validate(json.loads((OLD / name / file).read_text()), schemas[file])
    bad = {**json.loads((OLD / name / "metrics.json").read_text()), "accuracy": "high"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schemas["metrics.json"])


# -- RunState is used where runs are queued, run, settled and served ---------------------------------
STATE_WORDS = {s.value for s in RunState}
# every module but the contracts themselves (where the states are defined)
STATE_MODULES = [str(p) for p in sorted((REPO / "tl_ui").rglob("*.py")) if "contracts" not in p.parts]


def _state_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals that are run states, compared with something or passed to a status setter."""
    found = []

    def literals(node):
        if isinstance(node, ast.Constant) and node.value in STATE_WORDS:
            yield node
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            for element in node.elts:
                yield from literals(element)

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                found += [(lit.lineno, lit.value) for lit in literals(side)]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("set_status", "status"):
            found += [(lit.lineno, lit.value) for arg in node.args for lit in literals(arg)]
    return found


@pytest.mark.parametrize("module", STATE_MODULES, ids=lambda m: Path(m).relative_to(REPO).as_posix()
                         if Path(m).is_absolute() else m)
def test_run_states_are_the_enum_not_string_literals(module):
    path = REPO / module
    assert _state_literals(ast.parse(path.read_text(encoding="utf-8"))) == [], \
        f"{module}: compare with RunState members (tl_ui.contracts), not strings"


# -- the metrics model declares what the engine writes today ----------------------------------------------
PINNED = REPO / "tests" / "data" / "pinned_metrics"


def _undeclared(model, data, path: str = "") -> list[str]:
    """Keys of `data` (and of its typed blocks) that `model` does not declare (they would pass as extras)."""
    import typing

    from pydantic import BaseModel

    def block_type(annotation):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        return next((t for t in map(block_type, typing.get_args(annotation)) if t is not None), None)

    found = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            found.append(f"{path}.{key}")
            continue
        block = block_type(field.annotation)
        if block is None:
            continue
        is_map = any(typing.get_origin(a) is dict for a in (field.annotation, *typing.get_args(field.annotation)))
        children = (list(value.values()) if is_map else [value]) if isinstance(value, dict) else \
            (value if isinstance(value, list) else [])
        for child in children:
            if isinstance(child, dict):
                found += _undeclared(block, child, f"{path}.{key}")
    return sorted(set(found))


@pytest.mark.parametrize("name", sorted(p.stem for p in PINNED.glob("*.json")))
def test_the_metrics_model_declares_every_field_the_engine_writes(name):
    """tests/data/pinned_metrics holds what the engine writes now (tests/helpers/pinned_runs.py): a field added there
    must be added to RunMetrics (and the schema in docs/contracts.md regenerated)."""
    metrics = json.loads((PINNED / f"{name}.json").read_text())["metrics.json"]   # (its timings removed)
    assert _undeclared(RunMetrics, metrics) == []
