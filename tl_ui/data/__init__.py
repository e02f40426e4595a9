"""Data ingestion: uploads in, a validated `LabelledDataset` out (or a `DataError` to show)."""
from .dataset import DataError, LabelledDataset
from .limits import Limits
from .load import load_dataset
from .samples import sample_dataset_path
from .split import stratified_split, stratified_subset

__all__ = ["load_dataset", "LabelledDataset", "DataError", "Limits", "stratified_split",
           "stratified_subset", "sample_dataset_path"]
