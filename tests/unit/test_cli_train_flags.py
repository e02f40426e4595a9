"""`python -m tl_ui train`'s flags are RunConfig's fields: one flag per setting the page has, the
field's description as its help, every flag name the README and earlier versions documented still
working. No training here (tests/integration/test_cli_engine.py trains)."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tl_ui.cli.train import FLAG_FIELDS, add_train_parser, field_flag
from tl_ui.core.config import OPTION_NAMES, RunConfig

REPO = Path(__file__).resolve().parents[2]

# Flags of `train` that are no RunConfig field, and why.
NOT_FIELDS = {
    "--help": "argparse's own",
    "--config": "which run.json to replay: the settings come from that file",
    "--continue-from": "which finished run to continue: its run.json gives the settings",
    "--out": "where the run folder goes: a run's place, not a setting of it",
    "--quiet": "how much the command prints, not how the model trains",
}
# Fields without a flag, and why (run bookkeeping the engine and the service fill in).
NOT_FLAGS = {
    "extra": "run bookkeeping (continue_from, scratch_of, ...)",
    "limits": "the data limits in force: the server's TL_* settings, recorded for a replay",
    "data_sha256": "computed from the data, checked by a replay",
    "num_threads": "the engine's choice for the worker's CPU",
    "evaluation": "'same_set' is for benchmarks only; a person always gets three held-out roles",
}
# Every flag the README's Headless section and earlier versions of the CLI documented.
EARLIER_FLAGS = ["--data", "--model", "--strategy", "--epochs", "--learning-rate", "--batch-size", "--image-size",
                 "--max-examples", "--seed", "--random-init", "--compare-scratch", "--text-column", "--label-column",
                 "--label-columns", "--label-separator", "--group-column", "--set-level", "--continue-from",
                 "--config", "--out", "--quiet"]


def train_parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(prog="python -m tl_ui").add_subparsers(dest="command")
    return add_train_parser(commands)


@pytest.fixture(scope="module")
def help_text() -> str:
    done = subprocess.run([sys.executable, "-m", "tl_ui", "train", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def help_flags(text: str) -> set[str]:
    """The flags `--help` lists: each option line starts with its flags ("  --augment, --no-augment")."""
    options = text.split("options:", 1)[1].split("\nlinear_probe:", 1)[0]
    flags = set()
    for line in options.splitlines():
        if line.startswith("  -"):
            invocation = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
            flags |= set(re.findall(r"--[a-z][a-z-]*", invocation))
    return flags


def test_every_flag_of_train_help_is_a_run_config_field_and_back(help_text):
    shown = help_flags(help_text)
    by_flag = {field_flag(name): name for name in FLAG_FIELDS}
    negated = {"--no-" + field_flag(name)[2:]: name for name in FLAG_FIELDS
               if RunConfig.model_fields[name].annotation is bool}
    unexplained = shown - set(by_flag) - set(negated) - set(NOT_FIELDS)
    assert not unexplained, f"flags that are no RunConfig field: {sorted(unexplained)}"
    missing = {name for name in RunConfig.model_fields if field_flag(name) not in shown} - set(NOT_FLAGS)
    assert not missing, f"RunConfig fields without a flag: {sorted(missing)}"
    assert set(NOT_FLAGS) | set(FLAG_FIELDS) == set(RunConfig.model_fields)
    assert set(FLAG_FIELDS) == OPTION_NAMES | {"data_path"}     # every option the page has, and the data
    assert set(NOT_FIELDS) - {"--help"} <= shown


def test_the_help_of_each_flag_is_the_fields_description(help_text):
    flat = " ".join(help_text.split())
    for name in FLAG_FIELDS:
        assert " ".join(RunConfig.model_fields[name].description.split()) in flat, name


def test_the_flags_the_readme_and_earlier_versions_name_still_work():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    headless = readme.split("## Headless use", 1)[1].split("\n## ", 1)[0]
    commands = headless.split("```bash", 1)[1].split("```", 1)[0]
    train_lines = "\n".join(line for line in commands.splitlines() if "train" in line or line.strip().startswith("#"))
    named = set(re.findall(r"--[a-z][a-z-]*", train_lines)) - {"--json", "--level", "--models", "--run"}
    assert named <= set(EARLIER_FLAGS), "a train flag in the README's commands that this test does not know"
    known = {option for action in train_parser()._actions for option in action.option_strings}
    assert set(EARLIER_FLAGS) <= known
    assert {"--lora-rank", "--unfreeze-groups", "--max-length", "--val-fraction", "--dicom-window"} <= known


def test_the_flags_the_page_had_and_the_cli_lacked_reach_run_config():
    args = train_parser().parse_args([
        "--data", "x.csv", "--model", "minilm_l6", "--strategy", "partial", "--lora-rank", "4", "--unfreeze-groups", "3",
        "--max-length", "64", "--val-fraction", "0.3", "--dicom-window", "lung", "--no-augment", "--class-weighted",
        "--lr-decay", "0.7", "--set-level", "0.95", "--random-init", "--out", "run"])
    options = {name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name) is not None}
    config = RunConfig.from_options(options, modality="text")
    assert (config.model_id, config.data_path, config.strategy, config.lora_rank, config.unfreeze_groups) == \
        ("minilm_l6", "x.csv", "partial", 4, 3)
    assert (config.max_length, config.val_fraction, config.dicom_window, config.augment, config.class_weighted,
            config.lr_decay, config.set_level, config.random_init) == (64, 0.3, "lung", False, True, 0.7, 0.95, True)
    # a flag not given leaves the setting alone (a --config replay keeps its value)
    assert "augment" not in {k for k, v in vars(train_parser().parse_args(["--out", "r"])).items() if v is not None}


def test_a_bad_flag_value_is_refused_by_argparse():
    with pytest.raises(SystemExit):
        train_parser().parse_args(["--lora-rank", "four", "--out", "r"])
    with pytest.raises(SystemExit):
        train_parser().parse_args(["--dicom-window", "abdomen", "--out", "r"])
