"""The report as one self-contained HTML page: Jinja2 templates (templates/*.html.j2), one CSS for
screen and print (templates/report.css, inlined), figures as inline SVG.

`part` is the one filter that prints a fact: a quoted number as
`<span class="q" data-run=… data-src=… data-ptr=… data-style=…>75.0%</span>`, a quoted sentence as
`<span class="said" …>`, a name from the data as `<span class="name">`, plain words escaped.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from tl_ui.study_report.context import Estimate, Help, Interval, Line, Name, ReportContext
from tl_ui.study_report.quote import Quote, Said, pointer

TEMPLATES = Path(__file__).with_name("templates")


def _quote(q: Quote) -> Markup:
    if q.value is None:
        return Markup('<span class="nr">not recorded</span>')
    return Markup('<span class="q" data-run="{}" data-src="{}" data-ptr="{}" data-style="{}">{}</span>').format(
        q.run, q.source, q.ptr, q.style, q.text)


def part(value) -> Markup:
    """One part of a sentence or a table cell, as HTML."""
    if value is None:
        return Markup('<span class="nr">not recorded</span>')
    if isinstance(value, Quote):
        return _quote(value)
    if isinstance(value, Said):
        return Markup('<span class="said" data-run="{}" data-src="{}" data-ptr="{}">{}</span>').format(
            value.run, value.source, value.ptr, value.text)
    if isinstance(value, Name):
        return Markup('<span class="name">{}</span>').format(value.text)
    if isinstance(value, Help):
        return Markup('<span class="help">{}</span>').format(value.text)
    if isinstance(value, Interval):
        return Markup("{} to {}").format(_quote(value.low), _quote(value.high))
    if isinstance(value, Estimate):
        if value.interval is None or value.value.value is None:
            return _quote(value.value)
        return Markup('{} <span class="ci">({})</span>').format(_quote(value.value), part(value.interval))
    if isinstance(value, Line):
        return Markup("").join(part(p) for p in value.parts)
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, Quote) for v in value):
        return part(Interval(*value))    # Quoter.interval's (low, high)
    if isinstance(value, (list, tuple)):
        return Markup("").join(part(p) for p in value)
    return escape(str(value))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined)
    env.filters["part"] = part
    env.filters["name"] = lambda text: part(Name(str(text)))
    env.filters["help"] = lambda text: part(Help(str(text)))
    env.globals["pointer"] = pointer
    return env


def stylesheet() -> str:
    return (TEMPLATES / "report.css").read_text(encoding="utf-8")


def render_html(context: ReportContext) -> str:
    """The whole report as one HTML document (CSS inlined, figures inline: no other file needed)."""
    template = environment().get_template("report.html.j2")
    return template.render(report=context, run=context.main, css=Markup(stylesheet()))
