"""The typed context the templates render: runs, sections, tables, figures and sentences built of parts.

Every part a template prints is one of: plain words (`str`, which must hold no digit: tests check),
a `Quote` (a number read from a file), a `Said` (a sentence a file holds), a `Name` (a label,
a file name, an id: words from the data or the settings, printed as they are), or an `Interval`
of two quotes. Figures are inline SVG with their alt text, caption and the table beside them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from tl_ui.study_report.quote import Quote, Quoter, Said


class Lookup(dict):
    """A dict whose missing keys read as None in templates (`run.tables.groups` for a run without groups)."""

    def __getattr__(self, key: str):
        if key.startswith("__"):
            raise AttributeError(key)
        return self.get(key)


@dataclass(frozen=True)
class Name:
    """Words from the data or the settings (a class, a group, a file, a model id, a run id)."""
    text: str


@dataclass(frozen=True)
class Help:
    """Fixed help text of a setting or a strategy (RunConfig's field descriptions): printed as written."""
    text: str


@dataclass(frozen=True)
class Interval:
    low: Quote
    high: Quote


@dataclass(frozen=True)
class Estimate:
    """A value with its interval (either may be missing)."""
    value: Quote
    interval: Optional[Interval] = None


Part = Union[str, Quote, Said, Name, Help, Interval, Estimate, None]


@dataclass
class Line:
    """A sentence made of parts, e.g. Line(["Right on ", q, " of ", n, " test examples."])."""
    parts: list[Part]
    kind: str = "note"     # "note", "warning" (a limitation the reader must know)


@dataclass
class Table:
    caption: str
    header: list[Part]
    rows: list[list[Part]]
    row_headers: bool = True     # the first cell of each row names the row (<th scope="row">)
    id: str = ""
    numeric: bool = True         # right-align the cells after the first


@dataclass
class Figure:
    id: str
    caption: str
    alt: str                     # what the figure shows, in words (its numbers are in the table)
    svg: Any                     # the inline <svg> (a svg.Chart until figures.fill draws it)
    table: Optional[Table] = None
    title: str = ""


@dataclass
class ModelInfo:
    model_id: Name
    display_name: str
    licence: Optional[str]
    modality: str
    strategy: str
    strategy_help: str
    random_init: bool


@dataclass
class RunReport:
    """One run folder's facts. `m`, `r`, `s`, `x`, `d` quote metrics.json, run.json, status.json,
    model/transfer_lab.json and the data file's summary."""
    run_id: str
    path: str
    m: Quoter
    r: Quoter
    s: Quoter
    x: Quoter
    d: Quoter
    state: str
    finished: bool
    multilabel: bool
    model: Optional[ModelInfo]
    data: Any                                   # data_summary.DataFile
    classes: list[Name] = field(default_factory=list)
    blocks: set[str] = field(default_factory=set)     # which metrics.json blocks this run has
    tables: dict[str, Table] = field(default_factory=Lookup)
    figures: dict[str, Figure] = field(default_factory=Lookup)
    lines: dict[str, list[Line]] = field(default_factory=Lookup)
    quotes: dict[str, Any] = field(default_factory=Lookup)

    def has(self, block: str) -> bool:
        return block in self.blocks


@dataclass
class ChecklistRow:
    item: str                    # "1", "3a", ...
    section: str                 # the statement's section: "Title", "Methods", ...
    topic: str
    asks: str                    # what the item asks for, in short
    status: str                  # "reported", "partly", "author", "not applicable", "not measured"
    where: Optional[str] = None  # the report section's anchor
    where_title: Optional[str] = None
    note: str = ""


@dataclass
class ReportContext:
    title: str
    main: RunReport
    compared: list[RunReport]
    checklist: list[ChecklistRow]
    sections: list[tuple[str, str]]        # (anchor, title) in order, for the contents list
    tool_version: Name
    compare_table: Optional[Table] = None
