"""The HTML report is self-contained and renders in headless Chromium without console errors."""

import numpy as np
import pandas as pd
import pytest

from layerscope.provenance import Provenance
from layerscope.report import Figure, Section, Table, figure_to_png, render_report, show_image
from layerscope.report.figures import nice_length_nm


@pytest.mark.parametrize("target,expected", [(0.37, 0.2), (1.0, 1.0), (7.9, 5.0), (23.0, 20.0), (0.0049, 0.002)])
def test_scale_bar_lengths_are_round(target, expected):
    assert nice_length_nm(target) == pytest.approx(expected)


def _report(tmp_path):
    fig, ax = show_image(np.random.default_rng(0).random((64, 96)), 0.05, title="simulated")
    section = Section(
        "A section <with> markup",
        "First paragraph.\n\nSecond paragraph with <script>alert(1)</script>.",
        figures=[Figure("image", figure_to_png(fig), "caption")],
        tables=[Table("columns", pd.DataFrame({"x_nm": np.linspace(0, 1, 50), "kind": ["TM"] * 50}), max_rows=10)],
        metrics={"O1 thickness (nm)": 2.345678},
        provenance=Provenance.create(parameters={"seed": 0}),
    )
    return render_report([section], tmp_path / "report.html", provenance=Provenance.create())


def test_report_is_self_contained_and_escapes_text(tmp_path):
    html = _report(tmp_path).read_text()
    assert html.count("data:image/png;base64,") == 1
    assert "<script>" not in html  # user text is escaped, and the report needs no script
    assert "http://" not in html and "https://" not in html  # nothing is fetched when it opens
    assert "first 10 of 50 rows" in html
    assert "2.346" in html and '"seed": 0' in html


def test_report_renders_in_headless_chromium(tmp_path, open_in_chromium):
    page = open_in_chromium(_report(tmp_path))
    assert page["errors"] == []
    [(complete, width, height)] = page["images"]
    assert complete and width > 100 and height > 50
    assert page["sections"] == ["A section <with> markup", "Provenance"]


def test_metrics_are_formatted_for_people():
    from layerscope.report.html import _format_metric

    assert _format_metric(2.345678) == "2.346"
    assert _format_metric(None) == "—"
    assert _format_metric({"O3": 0.47576, "O3'": 0.5}) == "O3 0.4758 · O3' 0.5"
    assert _format_metric((1.0, 2.5)) == "1, 2.5"


def test_render_report_never_replaces_foreign_figure_files(tmp_path):
    from layerscope.errors import InputError

    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "figure-1.png").write_bytes(b"the user's own figure")
    with pytest.raises(InputError, match="figure-1.png"):
        _report(tmp_path)
    assert (tmp_path / "figures" / "figure-1.png").read_bytes() == b"the user's own figure"
    assert not (tmp_path / "report.html").exists()  # refused before anything was written
    (tmp_path / "figures" / "figure-1.png").unlink()
    report = _report(tmp_path)
    assert (tmp_path / "figures" / "figure-1.png").stat().st_size > 1000 and report.is_file()
    assert (tmp_path / "figures" / "figure-1.svg").read_bytes().startswith(b"<?xml")
