"""Data ingestion: uploads in, a validated `LabelledDataset` out (or a `DataError` to show).

The names below load on first use: `tl_ui.data.limits` (what the server's settings read their
defaults from) must import without pandas and scikit-learn.
"""
from importlib import import_module as _import_module

_LAZY = {
    "DataError": "tl_ui.data.dataset", "LabelledDataset": "tl_ui.data.dataset", "Limits": "tl_ui.data.limits",
    "load_dataset": "tl_ui.data.load", "sample_dataset_path": "tl_ui.data.samples",
    "stratified_split": "tl_ui.data.split", "stratified_subset": "tl_ui.data.split",
}
__all__ = ["load_dataset", "LabelledDataset", "DataError", "Limits", "stratified_split",
           "stratified_subset", "sample_dataset_path"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tl_ui.data' has no attribute {name!r}")
