"""Writes the JSON Schema of each run-folder file into docs/contracts.md, between its markers.

    python -m tl_ui.core.schema_doc           # rewrite the block
    python -m tl_ui.core.schema_doc --check   # exit 1 when the block is out of date

tests/unit/test_contracts.py fails when the block differs from what this would write.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"
BEGIN = "<!-- BEGIN GENERATED: JSON Schemas (python -m tl_ui.core.schema_doc; do not edit by hand) -->"
END = "<!-- END GENERATED: JSON Schemas -->"


def documented_models() -> list[tuple[str, type]]:
    """(file, model) for each file of a run folder that has a model."""
    from tl_ui.core.config import RunConfig
    from tl_ui.contracts import ExportManifest, LabelProvenance, RunMetrics, RunStatus, ValidationReport

    return [("run.json", RunConfig), ("status.json", RunStatus), ("metrics.json", RunMetrics),
            ("model/transfer_lab.json", ExportManifest), ("validation/<id>/validation.json", ValidationReport),
            ("labelling/export/<file>.provenance.json", LabelProvenance)]   # and run.json's extra.labels_provenance


def compact_json(value, indent: int = 0, width: int = 140) -> str:
    """JSON with every object or list that fits in `width` characters on one line (a schema stays
    readable in the page, a few hundred lines instead of thousands)."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + indent <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(value, dict):
        rows = [f"{inner}{json.dumps(k)}: {compact_json(v, indent + 1, width).lstrip()}" for k, v in value.items()]
        return "{\n" + ",\n".join(rows) + "\n" + pad + "}"
    rows = [inner + compact_json(v, indent + 1, width).lstrip() for v in value]
    return "[\n" + ",\n".join(rows) + "\n" + pad + "]"


def without_titles(schema):
    """pydantic's automatic titles ("Batch Size" for batch_size) say nothing the names do not."""
    if isinstance(schema, dict):
        return {k: without_titles(v) for k, v in schema.items()
                if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [without_titles(v) for v in schema]
    return schema


def render() -> str:
    parts = [BEGIN, ""]
    for file, model in documented_models():
        schema = without_titles(model.model_json_schema())
        parts += [f"#### `{file}` (`{model.__module__}.{model.__name__}`)", "",
                  "<details><summary>JSON Schema</summary>", "", "```json",
                  compact_json(schema), "```", "", "</details>", ""]
    parts.append(END)
    return "\n".join(parts)


def current_block(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = DOC.read_text(encoding="utf-8")
    fresh = render()
    if "--check" in argv:
        if current_block(text) != fresh:
            print(f"{DOC} is out of date: run python -m tl_ui.core.schema_doc", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text.replace(current_block(text), fresh), encoding="utf-8")
    print(f"wrote the JSON Schemas into {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
