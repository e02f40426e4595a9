"""Many inputs through one finished model, a batch at a time (issue 34): batch scoring's table and the
answers external validation measures. Runs where the model is (an inference worker of its own, or the
command line's process); memory stays bounded: only one batch of decoded inputs is held at a time, and
rows go to the CSV as they come.

Each row is exactly what `Predictor.predict_with_set` answers for that input alone (the try-it box,
`/predict` and `python -m tl_ui predict` give the same probabilities): the calibrated, full-precision
model, its prediction set, the operating point's decision where the export has one, the "unlike the
training data" flag.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from tl_ui.engine.inference.predict import PredictError

# inputs decoded at a time: the model's own batch (Predictor.predict_proba runs 8 at a time), so that Stop is
# honoured within one batch even on a busy CPU, and memory holds 8 decoded inputs
BATCH = 8


class Stopped(RuntimeError):
    """The person pressed Stop (or the time cap asked): nothing was kept."""


def stream_answers(predictor, items: Sequence, *, names: Optional[Sequence[str]] = None, batch_size: int = BATCH,
                   level: Optional[float] = None,
                   on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
                   should_stop: Callable[[], bool] = lambda: False,
                   what: str = "Scoring") -> Iterator[tuple[int, list[dict]]]:
    """(offset, answers) per batch, in the inputs' order; Stopped between batches when asked. An input the
    model cannot read raises PredictError naming it (by its name in the upload, never a server path)."""
    total = len(items)
    on_progress(0, total, f"{what} {total} inputs")
    for start in range(0, total, batch_size):
        if should_stop():
            raise Stopped("Stopped.")
        chunk = list(items[start:start + batch_size])
        try:
            answers = predictor.predict_with_set(chunk, level)
        except PredictError:
            raise _which_failed(predictor, chunk, list(names[start:start + batch_size]) if names else None) from None
        yield start, answers
        on_progress(min(start + batch_size, total), total, f"{what}: {min(start + batch_size, total)} of {total}")


def _which_failed(predictor, chunk: list, names: Optional[list]) -> PredictError:
    for offset, item in enumerate(chunk):
        try:
            predictor.predict_with_set([item])
        except PredictError as exc:
            shown = names[offset] if names else f"input {offset + 1}"
            message = str(exc).replace(str(item), shown)
            return PredictError(f"'{shown}' could not be scored: {message} Remove or replace it and try again.")
    return PredictError("A batch of inputs could not be scored. Try again with fewer inputs.")


def answer_row(answer: dict, classes: Sequence[str]) -> dict:
    """The table's columns for one answer: predicted, p_<class>..., prediction_set, decision?, unlike_training_data."""
    probabilities = answer.get("probabilities") or {}
    labels = answer.get("labels")   # multi-label: the labels at or above their thresholds
    predicted = "; ".join(labels) if labels is not None else next(iter(probabilities), "")
    row = {"predicted": predicted, **{f"p_{c}": f"{float(probabilities.get(c, 0.0)):.6f}" for c in classes},
           "prediction_set": "; ".join(answer.get("prediction_set") or [])}
    if "decision" in answer:
        row["decision"] = "" if answer["decision"] is None else str(answer["decision"])
    flag = answer.get("unlike_training_data")
    row["unlike_training_data"] = "" if flag is None else str(bool(flag)).lower()
    return row


def columns(classes: Sequence[str], has_decision: bool, first: Sequence[str] = ("item",)) -> list[str]:
    return [*first, "predicted", *[f"p_{c}" for c in classes], "prediction_set",
            *(["decision"] if has_decision else []), "unlike_training_data"]


def has_decision(predictor) -> bool:
    """Whether this export's answers carry a decision at an operating point (issue 33's manifest block)."""
    return bool((getattr(predictor, "manifest", None) or {}).get("operating_point"))


def score_to_csv(predictor, items: Sequence, names: Sequence[str], out_csv: str | Path, *,
                 batch_size: int = BATCH, level: Optional[float] = None,
                 on_progress: Callable[[int, int, str], None] = lambda done, total, message: None,
                 should_stop: Callable[[], bool] = lambda: False, xlsx: bool = True) -> dict:
    """Write predictions.csv (and predictions.xlsx where openpyxl is installed) beside `out_csv`; written aside
    and renamed, so a stopped or failed batch leaves no half table. {"n", "n_flagged", "csv", "xlsx"}."""
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    partial = out_csv.with_name(f".{out_csv.name}.partial")
    header = columns(predictor.classes, has_decision(predictor))
    n_flagged = 0
    try:
        with open(partial, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            for start, answers in stream_answers(predictor, items, names=names, batch_size=batch_size, level=level,
                                                 on_progress=on_progress, should_stop=should_stop):
                for offset, answer in enumerate(answers):
                    row = answer_row(answer, predictor.classes)
                    n_flagged += row["unlike_training_data"] == "true"
                    writer.writerow({"item": names[start + offset], **row})
        os.replace(partial, out_csv)
    finally:
        partial.unlink(missing_ok=True)
    written = {"n": len(items), "n_flagged": int(n_flagged), "csv": str(out_csv), "xlsx": None}
    if xlsx:
        written["xlsx"] = csv_to_xlsx(out_csv)
    return written


def csv_to_xlsx(csv_path: Path) -> Optional[str]:
    """The same table as .xlsx (openpyxl's streaming writer), or None when openpyxl is not installed."""
    try:
        from openpyxl import Workbook
    except ImportError:
        return None
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("predictions")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        numeric = [name.startswith("p_") for name in header]
        sheet.append(header)
        for row in reader:   # probabilities as numbers; names, texts and sets as written
            sheet.append([float(v) if is_p and v else v for v, is_p in zip(row, numeric)])
    target = Path(csv_path).with_suffix(".xlsx")
    partial = target.with_name(f".{target.name}.partial")
    workbook.save(partial)
    os.replace(partial, target)
    return str(target)

