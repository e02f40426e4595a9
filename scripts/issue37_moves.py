"""Rewrite references to the module paths from before issue 37's reorganisation (tl_ui/engine/ split by
stage; tl_ui/app, tl_ui/cli, tl_ui/core gathered) in the given files: `from tl_ui.engine.train import
...` becomes `from tl_ui.engine.training.loop import ...`, `tl_ui/engine/models.py` becomes
`tl_ui/engine/models/build.py`, and so on (MOVES below is the whole table).

For merging a branch that started before the move: run it on the files that branch added or changed,
then read the diff (names that moved to another module than their file's, e.g. `fit_ovr_head`, are
listed in RENAMED_NAMES and need a hand):

    python scripts/issue37_moves.py $(git diff --name-only main...BRANCH)

Delete this script once no branch from before the move is left.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

# old module -> new module (dotted; the same table rewrites tl_ui/a/b.py paths)
MOVES = {
    # loose top-level modules, gathered
    "tl_ui.__main__": "tl_ui.cli.main",
    "tl_ui.cli_advise": "tl_ui.cli.advise",
    "tl_ui.cli_data": "tl_ui.cli.data",
    "tl_ui.cli_explain": "tl_ui.cli.explain",
    "tl_ui.cli_train": "tl_ui.cli.train",
    "tl_ui.webapp": "tl_ui.app.webapp",
    "tl_ui.server": "tl_ui.app.server",
    "tl_ui.auth": "tl_ui.core.auth",
    "tl_ui.settings": "tl_ui.core.settings",
    "tl_ui.config": "tl_ui.core.config",
    "tl_ui.limits": "tl_ui.core.limits",
    "tl_ui.catalog": "tl_ui.core.catalog",
    "tl_ui.runfolder": "tl_ui.core.runfolder",
    "tl_ui.measured_text": "tl_ui.core.measured_text",
    "tl_ui.measured": "tl_ui.core.measured",
    "tl_ui.contracts.schema_doc": "tl_ui.core.schema_doc",
    # the engine, by stage
    "tl_ui.engine.models": "tl_ui.engine.models.build",
    "tl_ui.engine.packaged_weights": "tl_ui.engine.models.packaged_weights",
    "tl_ui.engine.model_cache": "tl_ui.engine.models.model_cache",
    "tl_ui.engine.inputs": "tl_ui.engine.models.inputs",
    "tl_ui.engine.fast_path": "tl_ui.engine.models.fast_path",
    "tl_ui.engine.sentence_export": "tl_ui.engine.export.sentence_export",
    "tl_ui.engine.sentence": "tl_ui.engine.models.sentence",
    "tl_ui.engine.train": "tl_ui.engine.training.loop",
    "tl_ui.engine.strategies": "tl_ui.engine.training.strategies",
    "tl_ui.engine.setfit": "tl_ui.engine.training.setfit",
    "tl_ui.engine.continuation": "tl_ui.engine.training.continuation",
    "tl_ui.engine.recorder": "tl_ui.engine.training.recorder",
    "tl_ui.engine.accelerate_checks": "tl_ui.engine.training.accelerate_checks",
    "tl_ui.engine.objective": "tl_ui.engine.tasks.single_label",
    "tl_ui.engine.multilabel_export": "tl_ui.engine.tasks.multi_label",
    "tl_ui.engine.multilabel_card": "tl_ui.engine.export.multilabel_card",
    "tl_ui.engine.multilabel": "tl_ui.engine.tasks.multi_label",
    "tl_ui.engine.probe_solver": "tl_ui.engine.probe.solver",
    "tl_ui.engine.features": "tl_ui.engine.probe.features",
    "tl_ui.engine.embedding_cache": "tl_ui.engine.probe.embedding_cache",
    "tl_ui.engine.evaluate": "tl_ui.engine.evaluation.evaluate",
    "tl_ui.engine.report": "tl_ui.engine.evaluation.report",
    "tl_ui.engine.roles": "tl_ui.engine.evaluation.roles",
    "tl_ui.engine.export": "tl_ui.engine.export.folder",
    "tl_ui.engine.card": "tl_ui.engine.export.card",
    "tl_ui.engine.predict": "tl_ui.engine.inference.predict",
    "tl_ui.engine.explain": "tl_ui.engine.inference.explain",
    "tl_ui.engine.familiarity": "tl_ui.engine.inference.familiarity",
    "tl_ui.engine.advisor_worker": "tl_ui.jobs.advisor_worker",
    "tl_ui.engine.advisor": "tl_ui.engine.advisor.ranking",
    "tl_ui.engine.transferability": "tl_ui.engine.advisor.transferability",
    "tl_ui.engine.data_map": "tl_ui.engine.advisor.data_map",
    "tl_ui.engine.planning": "tl_ui.engine.planning.estimate",
    "tl_ui.engine.shelf_facts": "tl_ui.engine.planning.shelf_facts",
    "tl_ui.engine.events": "tl_ui.contracts.events",   # RunResult: tl_ui.engine.training.recorder
}
# data files that moved with their readers
FILES = {
    "tl_ui/measured_figures.json": "tl_ui/core/measured_figures.json",
    "tl_ui/shelf_facts.json": "tl_ui/engine/planning/shelf_facts.json",
}
# names that left the module their file moved to, or were renamed: (old module, name) -> where they are now
RENAMED_NAMES = {
    ("tl_ui.engine.events", "RunResult"): "tl_ui.engine.training.recorder.RunResult",
    ("tl_ui.engine.events", "*"): "tl_ui.contracts.events (the event classes)",
    ("tl_ui.engine.train", "_Run"): "tl_ui.engine.training.loop.TrainingRun",
    ("tl_ui.engine.objective", "SingleLabelObjective"): "tl_ui.engine.tasks.single_label.SingleLabelTask",
    ("tl_ui.engine.multilabel", "MultiLabelRun"): "tl_ui.engine.tasks.multi_label.MultiLabelTask",
    ("tl_ui.engine.multilabel", "fit_ovr_head"): "tl_ui.engine.probe.one_vs_rest.fit_ovr_head",
    ("tl_ui.engine.multilabel_export", "CARD_NOTE"): "tl_ui.engine.export.multilabel_card.CARD_NOTE",
    ("tl_ui.engine.multilabel_export", "mark_multilabel"): "tl_ui.engine.tasks.multi_label.MultiLabelTask.mark_model",
    ("tl_ui.engine.multilabel_export", "multilabel_answers"): "Predictor.predict_with_set (MultiLabelTask.answers)",
    ("tl_ui.engine.models", "efficientnet_pytorch_to_timm"): "tl_ui.engine.models.packaged_weights",
    ("tl_ui.engine.sentence", "contrastive_stage_in_run"): "tl_ui.engine.training.setfit.contrastive_stage",
    ("tl_ui.engine.setfit", "contrastive_stage_in_run"): "tl_ui.engine.training.setfit.contrastive_stage",
    ("tl_ui.engine.setfit", "PAIRS_PER_EXAMPLE"): "tl_ui.core.config.SETFIT_PAIRS_PER_EXAMPLE",
    ("tl_ui.engine.setfit", "CHECKS"): "tl_ui.core.config.SETFIT_CHECKS",
    ("tl_ui.engine.probe_solver", "fit_head_in_run"): "tl_ui.engine.training.stages.fit_probe_head",
    ("tl_ui.engine.probe_solver", "_scaling"): "tl_ui.engine.probe.solver.app_options (takes the config)",
    ("tl_ui.engine.probe_solver", "MAX_ITER"): "tl_ui.core.config.PROBE_MAX_ITER",
    ("tl_ui.engine.familiarity", "familiarity_for_run"): "tl_ui.engine.training.stages.familiarity_reference",
    ("tl_ui.engine.planning", "probe_max_iterations"): "tl_ui.core.config.PROBE_MAX_ITER",
    ("tl_ui.engine.planning", "module_constants"): "gone: the constants are in tl_ui.core.config",
    ("tl_ui.engine.shelf_facts", "--count"): "python -m tl_ui.jobs.shelf_facts_worker --count",
    ("tl_ui.settings", "SETFIT_MAX_PAIRS"): "tl_ui.core.config.SETFIT_MAX_PAIRS",
    ("tl_ui.service.lab", "UserError"): "tl_ui.service.errors.UserError",
    ("tl_ui.service.lab", "NO_DATA_MESSAGE"): "tl_ui.service.errors.NO_DATA_MESSAGE",
    ("tl_ui.trust.intervals", "wilson_interval"): "tl_ui.trust.proportions.wilson_interval",
    ("tl_ui.trust.intervals", "DEFAULT_LEVEL"): "tl_ui.trust.proportions.DEFAULT_LEVEL",
    ("tl_ui.data.multilabel", "label_summary"): "tl_ui.data.dataset (LabelledDataset.summary()['multilabel'])",
    ("tl_ui.data.tables", "_resolve_column ..."): "tl_ui.data.table_columns (public names, no underscore)",
    ("tl_ui.runfolder", "RunFolder (in tl_ui/ui)"): "tl_ui.service.runs.open_run / run_metrics",
}
# `from tl_ui.engine import fast_path`: a module imported from its old package -> (new package, new name)
SUBMODULE_IMPORTS = {tuple(old.rsplit(".", 1)): tuple(new.rsplit(".", 1)) for old, new in MOVES.items()}
# the packages that took an old module's name (tl_ui.engine.models ...): their new children are not old paths
_NEW_CHILDREN = {old: {n[len(old) + 1:].split(".")[0] for n in MOVES.values() if n.startswith(old + ".")}
                 for old in MOVES}

_ORDER = sorted(MOVES, key=len, reverse=True)
_DOTTED = re.compile(r"(?<![\w.])(" + "|".join(re.escape(m) for m in _ORDER) + r")(?!\w)")
_SLASHED = re.compile(r"(?<![\w/])(" + "|".join(re.escape(m.replace(".", "/")) for m in _ORDER) + r")\.py\b")
_SHORT = re.compile(r"(?<![\w/.])(" + "|".join(re.escape(m.replace(".", "/")[len("tl_ui/"):]) for m in _ORDER
                                             if m.startswith("tl_ui.engine.")) + r")\.py\b")
_FROM = re.compile(r"^(\s*)from (tl_ui(?:\.\w+)*) import ([\w, ]+)$", re.M)


def _from_package(match: re.Match) -> str:
    """from tl_ui.engine import fast_path, planning -> one line per new package (`as` keeps the old name)."""
    indent, package, names = match.group(1), match.group(2), match.group(3)
    parsed = [(part.split(" as ")[0].strip(), part.split(" as ")[-1].strip()) for part in names.split(",")]
    if not all((package, name) in SUBMODULE_IMPORTS for name, _ in parsed):
        return match.group(0)
    lines = []
    for name, alias in parsed:
        new_package, new_name = SUBMODULE_IMPORTS[(package, name)]
        lines.append(f"{indent}from {new_package} import {new_name}" + (f" as {alias}" if alias != new_name else ""))
    return "\n".join(lines)


def _dotted(match: re.Match) -> str:
    old, rest = match.group(1), match.string[match.end():]
    child = re.match(r"\.(\w+)", rest) or re.match(r"\s+import\s+(\w+)", rest)
    if child and child.group(1) in _NEW_CHILDREN[old]:   # already a new path (tl_ui.engine.models.fast_path)
        return old
    return MOVES[old]


def rewrite(text: str) -> str:
    text = _DOTTED.sub(_dotted, text)
    text = _SLASHED.sub(lambda m: MOVES[m.group(1).replace("/", ".")].replace(".", "/") + ".py", text)
    text = _SHORT.sub(lambda m: MOVES["tl_ui." + m.group(1).replace("/", ".")].replace(".", "/")[len("tl_ui/"):]
                      + ".py", text)
    for old, new in FILES.items():
        text = re.sub(r"(?<![\w/])" + re.escape(old) + r"\b", new, text)
    return _FROM.sub(_from_package, text)   # last: its output holds only new paths


def main(paths: list[str]) -> int:
    changed = 0
    for name in paths:
        path = Path(name)
        if not path.is_file():
            continue
        try:
            before = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        after = rewrite(before)
        if after != before:
            path.write_text(after, encoding="utf-8")
            changed += 1
            print("rewrote", path)
    print(f"{changed} file(s) changed. Names that moved or were renamed (fix by hand where used):")
    for (module, name), now in RENAMED_NAMES.items():
        print(f"  {module}.{name} -> {now}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
