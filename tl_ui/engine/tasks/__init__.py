"""Kinds of task: one label per example (single_label.py), several labels per example (multi_label.py).
Each owns its loss, activation, probe head, what it chooses on the validation examples, its metrics,
predictions and what its export, model card and `Predictor` add (the seam: base.py). The registry below
picks a dataset's or an export's task: a new kind of task is one module and one line in TASKS."""
from __future__ import annotations

from typing import Sequence

from tl_ui.engine.tasks.base import Task
from tl_ui.engine.tasks.multi_label import MultiLabelTask
from tl_ui.engine.tasks.single_label import SingleLabelTask

# Asked in order; the last one is the default (it claims every dataset and export).
TASKS: tuple[type[Task], ...] = (MultiLabelTask, SingleLabelTask)


def task_for_dataset(dataset) -> Task:
    """The task a training run on `dataset` is (made for its classes)."""
    return next(task for task in TASKS if task.handles(dataset))(dataset.classes)


def task_for_export(manifest: dict, classes: Sequence[str]) -> Task:
    """The task an export was trained as, from its model/transfer_lab.json."""
    return next(task for task in TASKS if task.reads_export(manifest))(classes)
