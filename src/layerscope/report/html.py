"""The self-contained HTML report: sections with embedded figures, tables, numbers and provenance."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2
import pandas as pd

from layerscope.io.output import atomic_file
from layerscope.provenance import Provenance

__all__ = ["Figure", "Table", "Section", "render_report", "render_html"]


@dataclass
class Figure:
    """A PNG figure with a title and a caption."""

    title: str
    png: bytes
    caption: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Table:
    """A table shown in the report (long tables are cut to ``max_rows`` with a note)."""

    title: str
    dataframe: pd.DataFrame
    max_rows: int = 30

    def to_html(self) -> str:
        df = self.dataframe
        note = ""
        if len(df) > self.max_rows:
            note = f"<p class='note'>first {self.max_rows} of {len(df)} rows</p>"
            df = df.head(self.max_rows)
        return df.to_html(index=False, border=0, classes="table", float_format=lambda v: f"{v:.4g}") + note


@dataclass
class Section:
    """One part of the report, made by one analysis.

    Attributes
    ----------
    title : str
    text : str
        Plain text (paragraphs separated by blank lines); escaped when rendered.
    figures : list of Figure
    tables : list of Table
    metrics : dict
        Key numbers with units in the names, e.g. ``{"O1 thickness (nm)": 2.4}``.
    provenance : Provenance, optional
    """

    title: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")

    @property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.text.split("\n\n") if p.strip()]


_TEMPLATE = jinja2.Environment(
    loader=jinja2.PackageLoader("layerscope.report", "templates"),
    autoescape=True,
)


def _format_metric(value: Any) -> str:
    """A key number as text: floats to 4 significant digits, dicts as ``key value`` pairs, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return " · ".join(f"{k} {_format_metric(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_metric(v) for v in value)
    return str(value)


def render_html(sections: Sequence[Section], *, title: str, provenance: Provenance | None = None) -> str:
    """The report as one HTML string (figures embedded as data URIs, no external resources)."""
    import layerscope

    template = _TEMPLATE.get_template("report.html.j2")
    return template.render(
        title=title,
        sections=sections,
        provenance=provenance,
        version=layerscope.__version__,
        format_metric=_format_metric,
    )


def render_report(sections: Sequence[Section], path: str | Path, *, title: str = "layerscope report",
                  provenance: Provenance | None = None, overwrite: bool = False) -> Path:
    """Write the self-contained HTML report to ``path`` (atomically) and return the path.

    An existing ``path`` outside a command's output folder is replaced only with ``overwrite=True``
    (layerscope never replaces a file it may not have written).
    """
    path = Path(path)
    text = render_html(sections, title=title, provenance=provenance)
    with atomic_file(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
