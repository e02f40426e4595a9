"""Kinds of task (one label per example, several labels per example): each owns its loss, activation,
probe head, what it chooses on validation, its metrics, predictions and what its export, card and
Predictor add. The registry below picks the task for a dataset or an export."""
