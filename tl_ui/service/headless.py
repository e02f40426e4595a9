"""The service for the command line: one run from options (or a saved run.json) to a run folder,
in this process, with the same translator, limits and checks as the web app."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from tl_ui.core.config import ConfigError, RunConfig
from tl_ui.contracts import RunState
from tl_ui.core.runfolder import RunFolder
from tl_ui.service.errors import UserError
from tl_ui.service.workspace import data_sha256


def read_dataset(data_path: str, config_like: Mapping[str, Any], limits: dict):
    from tl_ui.core.folders import scratch_for_this_process
    from tl_ui.data import DataError, Limits, load_dataset

    workdir = scratch_for_this_process("tl-cli-data-")
    try:
        from tl_ui.data.load import dataset_options

        return load_dataset(data_path, workdir, **dataset_options(config_like), limits=Limits.from_record(limits))
    except DataError as exc:
        raise UserError(str(exc)) from None


def prepare_run(options: Mapping[str, Any], replay_of: Optional[str] = None):
    """(RunConfig, dataset) for a CLI run. `replay_of`: a run.json whose settings, data and data
    limits are reused (options override them); its data must be unchanged (sha256)."""
    from tl_ui.core.settings import load_settings

    base: dict[str, Any] = {}
    if replay_of:
        try:
            base = RunConfig.load(replay_of).to_dict()
        except (ConfigError, OSError) as exc:
            raise UserError(f"Cannot replay '{replay_of}': {exc}") from None
    merged = {**base, **{k: v for k, v in options.items() if v is not None}}
    data_path = merged.get("data_path") or ""
    if not data_path:
        raise UserError("Say which data to train on: --data PATH (or a --config that names it).")
    if not Path(data_path).exists():
        raise UserError(f"The data file '{data_path}' does not exist.")
    sha = data_sha256(Path(data_path))
    if base and base.get("data_sha256") and data_path == base.get("data_path") and sha != base["data_sha256"]:
        raise UserError(f"The data file '{data_path}' has changed since the run was made (its sha256 differs), "
                        "so a replay would not be faithful. Point --data at the original file.")
    settings = load_settings([])   # TL_* variables: the same limits as the server's
    limits = base.get("limits") or settings.limits_record()
    dataset = read_dataset(data_path, merged, limits)
    from tl_ui.data.multilabel import label_options

    merged = {**label_options(dataset), **merged}   # multi-label: how the labels were read, in run.json
    merged.update(data_path=str(Path(data_path).resolve()), data_sha256=sha, limits=limits)
    try:
        config = settings.run_limits().check(RunConfig.from_options(merged, modality=dataset.modality,
                                                                                    n_examples=len(dataset)))
        config.check_positive_class(dataset.classes, multilabel=bool(getattr(dataset, "multilabel", False)))
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    return config, dataset


def train_headless(options: Mapping[str, Any], out_dir: str | Path, *, replay_of: Optional[str] = None,
                   on_event: Optional[Callable] = None):
    """Train in this process; with compare_scratch, the companion goes to `<out>-scratch`.
    Returns the main run's RunResult (its metrics hold the comparison)."""
    from tl_ui.engine import train_run
    from tl_ui.service.compare import link_scratch_run

    config, dataset = prepare_run(options, replay_of)
    result = train_run(config, out_dir, on_event=on_event, dataset=dataset)
    if config.compare_scratch and result.status == RunState.FINISHED:
        scratch_dir = Path(f"{Path(out_dir)}-scratch")
        scratch = RunConfig.from_dict({**config.to_dict(), "random_init": True, "compare_scratch": False,
                                       "extra": {**config.extra, "scratch_of": Path(out_dir).name}})
        train_run(scratch, scratch_dir, on_event=on_event, dataset=dataset)
        link_scratch_run(RunFolder(out_dir), RunFolder(scratch_dir))
        result.metrics = RunFolder(out_dir).metrics()
    return result


def continue_headless(parent_dir: str | Path, epochs: Optional[int], out_dir: str | Path, *,
                      on_event: Optional[Callable] = None):
    """`epochs` more epochs of a finished run (tl_ui/engine/training/continuation.py), into `out_dir`, which must
    lie beside the parent (a continued run names its parent by its folder's name)."""
    from tl_ui.engine import train_run
    from tl_ui.engine.training.continuation import continue_config, why_not
    from tl_ui.core.settings import load_settings

    parent = RunFolder(parent_dir)
    if parent.state() != RunState.FINISHED or not parent.has_model:
        raise UserError(f"'{parent_dir}' is not a finished run with a model. Point --continue-from at one.")
    if why_not(parent):
        raise UserError(why_not(parent))
    if Path(out_dir).resolve().parent != parent.path.resolve().parent:
        raise UserError(f"Put --out in the same folder as the run it continues ({parent.path.resolve().parent}).")
    if not epochs or int(epochs) < 1:
        raise UserError("Say how many more epochs: --epochs N (at least 1).")
    try:
        config = load_settings([]).run_limits().check(continue_config(parent.config(), parent.id, int(epochs)))
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if not config.data_path or not Path(config.data_path).exists():
        raise UserError(f"The run's data ('{config.data_path}') are no longer there, so it cannot be continued.")
    return train_run(config, out_dir, on_event=on_event)
