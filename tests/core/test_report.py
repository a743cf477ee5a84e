"""The HTML report is self-contained and renders in headless Chromium without console errors."""

import shutil

import numpy as np
import pandas as pd
import pytest

from layerscope.provenance import Provenance
from layerscope.report import Figure, Section, Table, figure_to_png, render_report, show_image
from layerscope.report.figures import nice_length_nm

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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


def test_report_renders_in_headless_chromium(tmp_path):
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is needed for this test: 'make test' installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    path = _report(tmp_path)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
        sections = page.eval_on_selector_all("section h2", "els => els.map(e => e.textContent)")
        browser.close()
    assert errors == []
    assert len(images) == 1 and images[0][0] and images[0][1] > 100 and images[0][2] > 50
    assert sections == ["A section <with> markup", "Provenance"]
