"""The base of every file contract: typed known fields, unknown ones kept as they are."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Block(BaseModel):
    """A JSON object of a run folder's file, or a part of one. `extra="allow"`: a key added by a newer
    engine travels through older readers unchanged."""
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON object as written: the fields that were given (None included), extras after them."""
        return self.model_dump(exclude_unset=True)
