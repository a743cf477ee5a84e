"""The demo's overview quotes each section's headline numbers with their uncertainties and units,
rounded to the uncertainty; every figure the demo draws passes the print checks.

The demo runs once in this process (about 2 min on one core) with ``figure_to_png`` checking each
figure before it is rendered and ``render_report`` keeping the sections it is given.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pytest

import layerscope.demo as demo
import layerscope.report as report
import layerscope.report.figures as rfig
from layerscope.report import Value, format_with_uncertainty, layout_problems


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    checked: list[tuple[str, list[str]]] = []
    kept: dict = {}
    original_png, original_render = rfig.figure_to_png, demo.render_report

    def checking(fig, **kwargs):
        title = " / ".join(ax.get_title() for ax in fig.axes if ax.get_title())
        checked.append((title, layout_problems(fig)))
        return original_png(fig, **kwargs)

    def keeping(sections, path, **kwargs):
        kept["sections"] = list(sections)
        return original_render(sections, path, **kwargs)

    mp.setattr(report, "figure_to_png", checking)
    mp.setattr(rfig, "figure_to_png", checking)
    mp.setattr(demo, "render_report", keeping)
    try:
        path = demo.run_demo(tmp_path_factory.mktemp("demo") / "out")
    finally:
        mp.undo()
    return {"html": path.read_text(encoding="utf-8"), "sections": kept["sections"], "checked": checked}


def test_every_demo_figure_is_fit_for_print(demo_run):
    checked = demo_run["checked"]
    assert len(checked) >= 15  # every domain's figures went through the check
    assert [(title, problems) for title, problems in checked if problems] == []


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def test_overview_quotes_values_rounded_to_their_uncertainty(demo_run):
    overview = demo_run["sections"][0]
    assert overview.title == "Overview"
    page = demo_run["html"]
    first = page.index("<section")
    shown = dict((html.unescape(k), html.unescape(v)) for v, k in re.findall(
        r'<div class="metric"><b>(.*?)</b><span>(.*?)</span></div>', page[first:page.index("</section>", first)]))
    assert set(shown) == set(overview.metrics)
    with_unc = {k: v for k, v in overview.metrics.items() if isinstance(v, Value) and v.uncertainty}
    assert len(with_unc) >= 12
    for key, v in with_unc.items():
        text = shown[key]
        assert text == str(v) and "±" in text, (key, text)
        number, _, rest = text.partition(" ± ")
        unc = rest.split(" ")[0]
        assert number == format_with_uncertainty(float(v), v.uncertainty).split(" ± ")[0]
        # two significant digits of the uncertainty, and the value to the same decimal place
        expected = max(0, 1 - math.floor(math.log10(v.uncertainty)))
        assert _decimals(number) == _decimals(unc) == expected, (key, text)
        assert abs(float(number) - float(v)) <= 0.5 * 10 ** -expected + 1e-12
        assert abs(float(unc) - v.uncertainty) <= 0.5 * 10 ** -expected + 1e-12
        assert rest.endswith(v.unit) if v.unit else True
    # every measured section quotes at least one number with its uncertainty; the atomistic numbers
    # (single calculations) carry a unit and say so in their names
    titles = [s.title for s in demo_run["sections"][1:]]
    sections_with_unc = {t for t in titles for k in with_unc if k.startswith(f"{t}: ")}
    measured = [t for t in titles if not t.startswith(("Simulated", "Atomistic"))]
    assert sorted(sections_with_unc) == sorted(measured)
    atomistic = {k: v for k, v in overview.metrics.items() if k.startswith("Atomistic")}
    assert atomistic and all(isinstance(v, Value) and v.unit and "one" in k for k, v in atomistic.items())


def _headline(demo_run, title_start: str) -> dict:
    section = next(s for s in demo_run["sections"][1:] if s.title.startswith(title_start))
    return section.headline_metrics()


def _one(metrics: dict, start: str) -> Value:
    (value,) = [v for k, v in metrics.items() if k.startswith(start)]
    return value


def test_headline_numbers_against_the_simulated_truth(demo_run):
    xrd = _headline(demo_run, "X-ray diffraction")
    assert _one(xrd, "c-lattice change") == pytest.approx(3.5, abs=0.15)  # pm, built 14.200 -> 14.235 Å
    assert _one(xrd, "I(003)/I(104) cycled") == pytest.approx(1.22, abs=0.05)
    eels = _headline(demo_run, "EELS")
    front = _one(eels, "front of Co_L valence")
    assert front == pytest.approx(9.0, abs=0.2) and front.unit == "nm"  # built at 9.0 nm
    insitu = _headline(demo_run, "In situ")
    assert _one(insitu, "front velocity") == pytest.approx(0.2, abs=0.005)  # nm/s
    assert _one(insitu, "void growth rate").uncertainty > 0
    imaging = _headline(demo_run, "Imaging")
    assert _one(imaging, "rock-salt layer") == pytest.approx(1.93, abs=0.1)  # built 1.93 nm
    bulk = _headline(demo_run, "Bulk")
    assert _one(bulk, "R2 charge transfer") == pytest.approx(50.0, rel=0.02)  # mOhm


def test_capacity_fade_matches_the_simulated_cell(demo_run):
    # the simulated cell (layerscope.cells.demo): capacity (1 - 0.006 k) x [0.99 (70 + 45 + 40 x 0.97^k) + 24 x 1.3]
    k = np.arange(20)
    cap = (1 - 0.006 * k) * (0.99 * (70 + 45 + 40 * 0.97**k) + 24 * 1.3)
    slope = np.polyfit(k + 1, 100 * cap / cap[0], 1)[0]
    cycling = _headline(demo_run, "Cycling")
    fade = _one(cycling, "capacity fade")
    assert fade == pytest.approx(-slope, abs=0.05) and fade.unit == "%/cycle"
    assert _one(cycling, "retention at cycle 20") == pytest.approx(100 * cap[-1] / cap[0], abs=0.5)
