"""A report's context from one run folder and, optionally, others to compare it with."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tl_ui.study_report.checklist import SECTIONS, checklist
from tl_ui.study_report.context import Name, ReportContext, RunReport, Table
from tl_ui.study_report.facts import gather_run
from tl_ui.study_report.tables import estimate

VALIDATION_FILE = Path("validation") / "validation.json"   # issue 34: external validation results (not read yet)


def build_context(run_dir: str | Path, compare: Iterable[str | Path] = (), read_data: bool = True) -> ReportContext:
    """The facts of `run_dir` (the run reported on) and of the runs in `compare`."""
    main = gather_run(run_dir, read_data=read_data)
    compared = [gather_run(path, read_data=False) for path in compare]
    for run in [main, *compared]:
        run.quotes["validation_file"] = (Path(run.path) / VALIDATION_FILE).is_file()
    context = ReportContext(title=_title(main), main=main, compared=compared, checklist=checklist(main),
                            sections=list(SECTIONS), tool_version=Name(_version()))
    context.compare_table = compare_table([main, *compared]) if compared else None
    return context


def _title(run: RunReport) -> str:
    kind = f"{run.model.modality} " if run.model else ""
    task = "multi-label classification" if run.multilabel else "classification"
    words = f"{kind}{task} model"
    return f"Development and internal evaluation of {'an' if words[0] in 'aeiou' else 'a'} {words}"


def _version() -> str:
    from tl_ui import __version__

    return __version__


def _test_items(run: RunReport) -> list[str] | None:
    import csv

    try:
        with open(Path(run.path) / "predictions.csv", encoding="utf-8", newline="") as fh:
            return [row["item"] for row in csv.DictReader(fh)]
    except (OSError, KeyError):
        return None


def compare_table(runs: list[RunReport]) -> Table:
    reference = _test_items(runs[0])
    rows = []
    for i, run in enumerate(runs):
        m = run.m
        items = _test_items(run)
        same = "this run" if i == 0 else ("yes" if items is not None and items == reference else "no")
        model = run.model
        rows.append([Name(run.run_id), Name(model.model_id.text if model else "?"),
                     Name(model.strategy if model else "?") if not (model and model.random_init) else
                     Name(f"{model.strategy}, random weights"), m.q("/n_val", "count"),
                     estimate(m, "/accuracy", "/accuracy_ci"), estimate(m, "/macro_f1", "/macro_f1_ci"), same])
    return Table("The runs side by side (each from its own metrics.json)",
                 ["Run", "Model", "Strategy", "Test examples", "Accuracy (interval)", "Macro-F1 (interval)",
                  "Same test examples"], rows, id="table-compare", numeric=False)

