"""`LabelProvenance`: where a run's labels came from when they were given in Transfer Lab (issue 41).
Written beside the training file the labelling view makes (`<file>.provenance.json`) and copied into
run.json as `extra["labels_provenance"]` when a run trains on that file (tl_ui/service/lab.py)."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from tl_ui.contracts.base import Block

LABELLED_HERE = "labelled in Transfer Lab"


class LabelProvenance(Block):
    source: str = Field(LABELLED_HERE, description="'labelled in Transfer Lab'")
    pool: str = Field(description="the unlabelled upload's file name")
    n_labels: int = Field(description="confirmed labels in the training file")
    n_not_sure: int = Field(0, description="items set aside as 'not sure' (not in the training file)")
    classes: dict[str, int] = Field(description="labels per class")
    first_labelled_at: Optional[str] = Field(None, description="UTC, ISO 8601")
    last_labelled_at: Optional[str] = Field(None, description="UTC, ISO 8601")
    labelled_by: list[str] = Field(default_factory=list,
                                   description="signed-in users who gave labels (empty: an anonymous session)")
    suggested_by: Optional[str] = Field(None, description="the shelf model whose probe chose the items asked")
    labels_sha256: str = Field(description="sha256 of the item,label export of all labels given")
    left_out: Optional[dict[str, int]] = Field(None, description="classes with fewer than 2 labels, not in the "
                                                                 "training file: {class: labels}")
