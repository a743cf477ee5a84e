"""The self-contained HTML report: sections with embedded figures, tables, numbers and provenance."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2
import pandas as pd

from layerscope.io.output import atomic_file, check_replaceable
from layerscope.provenance import Provenance

__all__ = ["Figure", "Table", "Section", "Value", "format_with_uncertainty", "render_report", "render_html"]


@dataclass
class Figure:
    """A figure with a title and a caption: PNG bytes, and the SVG rendering when there is one.

    ``png`` as made by :func:`layerscope.report.figure_to_png` carries its SVG (``png.svg``); the
    report numbers every figure ("Figure 3.") and writes both files next to ``report.html``.
    """

    title: str
    png: bytes
    caption: str = ""
    svg: bytes | None = None
    number: int = 0
    files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.svg is None:
            self.svg = getattr(self.png, "svg", None) or None

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


class Value(float):
    """A number with its uncertainty and unit, shown rounded to the uncertainty ("1.93 ± 0.21 nm").

    A ``Value`` is the float it carries (compares, sorts and serialises as that number), so a metric
    can become a ``Value`` without changing what reads it; ``str()`` gives the rounded text with
    the unit. Without an uncertainty (a single measurement) it shows 4 significant digits.

    Parameters
    ----------
    value : float
        The number (None or NaN: not measured, shown as "—").
    uncertainty : float, optional
        One standard uncertainty in the same unit (a fit's standard error, a standard deviation
        over frames/layers/particles: say which in the metric name).
    unit : str
        "nm", "eV", "%", "mOhm" ...; "" for a dimensionless number.
    """

    uncertainty: float | None
    unit: str

    def __new__(cls, value: Any, uncertainty: Any = None, unit: str = "") -> "Value":
        obj = super().__new__(cls, math.nan if value is None else float(value))
        unc = None if uncertainty is None else float(uncertainty)
        obj.uncertainty = unc if unc is not None and math.isfinite(unc) and unc > 0 else None
        obj.unit = unit
        return obj

    @property
    def value(self) -> float:
        """The number as a plain float."""
        return float(self)

    def __reduce__(self):
        return (Value, (float(self), self.uncertainty, self.unit))

    def __repr__(self) -> str:
        return f"Value({float(self)!r}, {self.uncertainty!r}, {self.unit!r})"

    def __str__(self) -> str:
        text = format_with_uncertainty(float(self), self.uncertainty)
        if text == _MISSING:
            return text
        return f"{text} {self.unit}".strip() if self.unit != "%" else f"{text} %"


def format_with_uncertainty(value: Any, uncertainty: Any = None) -> str:
    """``value ± uncertainty`` rounded to the uncertainty's two significant digits.

    Without a (finite, positive) uncertainty the value has 4 significant digits; a missing value
    (None, NaN) is "—".
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if uncertainty is None or not isinstance(uncertainty, (int, float)) or not math.isfinite(uncertainty) \
            or uncertainty <= 0:
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    decimals = max(0, 1 - int(math.floor(math.log10(abs(uncertainty)))))
    return f"{value:.{decimals}f} ± {uncertainty:.{decimals}f}"


#: Column-name parts that mark an uncertainty column (``x_err``, ``x_sigma_nm``, ``x_nm_err`` ...).
_ERR_TAGS = ("err", "sigma", "std", "unc", "uncertainty")
_MISSING = "—"


def _error_column(name: str, columns: Sequence[str]) -> str | None:
    head, _, unit = name.rpartition("_")
    for tag in _ERR_TAGS:
        for cand in (f"{name}_{tag}", f"{head}_{tag}_{unit}" if head else None, f"{head}_{tag}" if head else None):
            if cand and cand in columns and cand != name:
                return cand
    return None


@dataclass
class Table:
    """A table shown in the report, readable as printed and downloadable in full as CSV.

    Values are rounded to their uncertainty where a matching column exists (``a_A`` with
    ``a_err_A``); missing values show as "—" (not measured); tables wider than ``max_columns`` with
    few rows are transposed, others are split into column groups; long tables are cut to
    ``max_rows`` rows with a note. The full table is embedded as a CSV download.
    """

    title: str
    dataframe: pd.DataFrame
    max_rows: int = 30
    max_columns: int = 8
    max_csv_bytes: int = 4 << 20

    def _display(self) -> pd.DataFrame:
        df = self.dataframe
        cols = [str(c) for c in df.columns]
        pairs = {c: _error_column(c, cols) for c in cols}
        used = {e for e in pairs.values() if e}
        shown = {}
        for c, orig in zip(cols, df.columns):
            if c in used:
                continue
            err = pairs[c]
            if err is not None:
                shown[c] = [format_with_uncertainty(v, u) for v, u in zip(df[orig], df[err])]
            else:
                shown[c] = [_cell(v) for v in df[orig]]
        return pd.DataFrame(shown, index=range(len(df)))

    def csv_uri(self) -> str | None:
        """The whole table as a ``data:`` URI (None when larger than ``max_csv_bytes``)."""
        data = self.dataframe.to_csv(index=False).encode("utf-8")
        if len(data) > self.max_csv_bytes:
            return None
        return "data:text/csv;base64," + base64.b64encode(data).decode("ascii")

    def to_html(self) -> str:
        df = self._display()
        note = ""
        if len(df) > self.max_rows:
            note = f"<p class='note'>first {self.max_rows} of {len(df)} rows</p>"
            df = df.head(self.max_rows)
        if df.shape[1] > self.max_columns and len(df) <= 3:
            body = df.T.reset_index().rename(columns={"index": "quantity"})
            return body.to_html(index=False, border=0, classes="table") + note
        if df.shape[1] <= self.max_columns:
            return df.to_html(index=False, border=0, classes="table") + note
        key = df.columns[0]
        groups = [df.columns[i:i + self.max_columns - 1] for i in range(1, df.shape[1], self.max_columns - 1)]
        return "".join(df[[key, *g]].to_html(index=False, border=0, classes="table") for g in groups) + note


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return _MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _cell(value.item())
    return str(value)


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
        Key numbers with units in the names, e.g. ``{"O1 thickness (nm)": 2.4}``; a
        :class:`Value` carries its uncertainty.
    provenance : Provenance, optional
    headline : sequence of str, optional
        The metric keys that the overview of a multi-section report collects (default: the first
        three; an empty sequence: none).
    """

    title: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None
    headline: Sequence[str] | None = None

    def headline_metrics(self, n: int = 3) -> dict[str, Any]:
        """The numbers a paper would quote from this section (``headline`` keys, else the first ``n``)."""
        keys = list(self.metrics)[:n] if self.headline is None else [k for k in self.headline if k in self.metrics]
        return {k: self.metrics[k] for k in keys}

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
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, Value):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return " · ".join(f"{k} {_format_metric(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_metric(v) for v in value)
    return str(value)


def _number_figures(sections: Sequence[Section]) -> None:
    n = 0
    for section in sections:
        for fig in section.figures:
            n += 1
            fig.number = n


def render_html(sections: Sequence[Section], *, title: str, provenance: Provenance | None = None,
                timings_s: dict[str, float] | None = None) -> str:
    """The report as one HTML string (figures embedded as data URIs, no external resources).

    Figures are numbered in order ("Figure 1." ...); ``timings_s`` (step -> seconds) go into the
    footer, not the results.
    """
    from layerscope._version import __version__

    _number_figures(sections)
    template = _TEMPLATE.get_template("report.html.j2")
    return template.render(
        title=title,
        sections=sections,
        provenance=provenance,
        version=__version__,
        format_metric=_format_metric,
        timings_s=timings_s or {},
    )


def _figure_files(sections: Sequence[Section]) -> list[tuple[str, bytes]]:
    """``figures/figure-N.png`` (and ``.svg``) for every figure; the names are set on the figures."""
    files = []
    for section in sections:
        for fig in section.figures:
            for suffix, data in (("png", fig.png), ("svg", fig.svg)):
                if data:
                    fig.files[suffix] = f"figures/figure-{fig.number}.{suffix}"
                    files.append((fig.files[suffix], bytes(data)))
    return files


def render_report(sections: Sequence[Section], path: str | Path, *, title: str = "layerscope report",
                  provenance: Provenance | None = None, overwrite: bool = False,
                  timings_s: dict[str, float] | None = None, figure_files: bool = True) -> Path:
    """Write the self-contained HTML report to ``path`` (atomically) and return the path.

    An existing ``path`` outside a command's output folder is replaced only with ``overwrite=True``
    (layerscope never replaces a file it may not have written).
    """
    path = Path(path)
    _number_figures(sections)
    files = _figure_files(sections) if figure_files else []
    text = render_html(sections, title=title, provenance=provenance, timings_s=timings_s)
    # every file is checked before any is written: a refused figure file leaves no report without figures
    for target in [path, *(path.parent / rel for rel, _ in files)]:
        check_replaceable(target, overwrite=overwrite)
    with atomic_file(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    for rel, data in files:
        with atomic_file(path.parent / rel, overwrite=True) as tmp:
            tmp.write_bytes(data)
    return path
