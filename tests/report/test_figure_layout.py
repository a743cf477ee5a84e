"""Figures for print: legends outside the data, axis labels with units, fonts of at least 7 pt.

:func:`layerscope.report.layout_problems` is checked against figures whose faults are known, then run
on figures drawn by the domains' own figure functions from small synthetic results (the whole demo
is covered in ``test_demo_headlines.py``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import layerscope.report as report
import layerscope.report.figures as rfig
from layerscope.report import layout_problems, legend_outside
from layerscope.report.figures import axis_label, plt


def _lines(ax, n=3):
    x = np.linspace(0, 10, 50)
    for k in range(n):
        ax.plot(x, np.sin(x + k), label=f"series {k}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("position (nm)")


def test_a_legend_inside_the_data_is_found():
    fig, ax = plt.subplots(figsize=(5, 3.4))
    _lines(ax)
    ax.legend(loc="upper right", fontsize=8)
    problems = layout_problems(fig)
    plt.close(fig)
    assert len(problems) == 1 and "legend overlaps the data area of axes 0" in problems[0]


@pytest.mark.parametrize("where", ["right", "below"])
def test_legend_outside_leaves_the_data_free(where):
    fig, ax = plt.subplots(figsize=(5, 3.4))
    _lines(ax)
    leg = legend_outside(ax, where=where, fontsize=6)
    fig.canvas.draw()
    box, data = leg.get_window_extent(), ax.get_window_extent()
    assert layout_problems(fig) == []
    assert leg.get_texts()[0].get_fontsize() == 7.0  # raised to the 7 pt minimum
    if where == "right":
        assert box.x0 >= data.x1  # wholly right of the axes
    else:  # below the axes and below its x label too
        assert box.y1 <= data.y0 and box.y1 <= ax.xaxis.label.get_window_extent().y0
    plt.close(fig)


def test_two_panels_legend_below_does_not_cover_the_neighbour():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    _lines(axes[0]), _lines(axes[1])
    legend_outside(axes[0], where="below")
    fig.tight_layout()
    assert layout_problems(fig) == []
    # the left panel's legend drawn over the right panel: found
    axes[0].legend(loc="upper left", bbox_to_anchor=(0.05, 0.95), bbox_transform=axes[1].transAxes)
    assert any("overlaps the data area of axes 1" in p for p in layout_problems(fig))
    plt.close(fig)


def test_a_label_drawn_over_the_neighbouring_panel_is_found():
    # two panels squeezed together: the right one's y label and ticks fall on the left one's data
    fig, axes = plt.subplots(1, 2, figsize=(4, 3), gridspec_kw={"wspace": 0.0})
    for ax in axes:
        ax.plot([0, 1000], [0, 1000])
        ax.set_xlabel("energy loss (eV)")
        ax.set_ylabel("intensity (counts)")
    problems = layout_problems(fig)
    assert any("'intensity (counts)' is drawn over axes 0" in p for p in problems)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")  # room for the labels
    for ax in axes:
        ax.plot([0, 1000], [0, 1000])
        ax.set_xlabel("energy loss (eV)")
        ax.set_ylabel("intensity (counts)")
    assert layout_problems(fig) == []
    plt.close(fig)


def test_labels_without_units_and_small_fonts_are_found():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("counts")  # no unit
    ax.set_title("tiny", fontsize=6)
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("x label 'counts' has no unit" in p for p in problems)
    assert any("y axis has tick labels but no label" in p for p in problems)
    assert any("'tiny' is 6 pt" in p for p in problems)
    assert len(problems) == 3


@pytest.mark.parametrize("name,label", [("time_s", "time (s)"), ("temperature_C", "temperature (°C)"),
                                        ("voltage_V", "voltage (V)"), ("cycle", "cycle number"), ("c_A", "c (Å)")])
def test_axis_labels_from_column_names(name, label):
    assert axis_label(name) == label


@pytest.fixture
def checked(monkeypatch):
    """Every figure rendered by ``figure_to_png`` is checked first; the problems are collected."""
    found: list[tuple[str, list[str]]] = []
    original = rfig.figure_to_png

    def checking(fig, **kwargs):
        title = " / ".join(ax.get_title() for ax in fig.axes if ax.get_title())
        found.append((title, layout_problems(fig)))
        return original(fig, **kwargs)

    monkeypatch.setattr(report, "figure_to_png", checking)
    monkeypatch.setattr(rfig, "figure_to_png", checking)
    return found


def _assert_clean(found, at_least):
    assert len(found) >= at_least, found
    assert [(t, p) for t, p in found if p] == []


def test_eels_map_profile_and_spectra_figures(checked):
    from layerscope.spectra.figures import map_figure, profile_figure, spectra_figure

    values = np.add.outer(np.zeros(20), np.linspace(2.0, 3.0, 30))
    map_figure(values, 0.5, "Co_L L3/L2", {"angle_deg": 0.0, "centre_x_nm": 7.5, "centre_y_nm": 5.0})
    x = np.linspace(0.25, 19.75, 40)
    front = {"position_nm": 9.0, "position_sigma_nm": 0.1, "width_nm": 3.0, "width_sigma_nm": 0.2, "low": 2.0,
             "high": 3.0}
    profile_figure(x, 2.5 + 0.5 * np.tanh(x - 9), np.full(40, 0.05), "Co_L valence (linear combination)", front)
    e = np.linspace(500, 900, 801)
    spectra_figure({"O_K": (e, np.exp(-((e - 532) / 5) ** 2)), "Co_L": (e, np.exp(-((e - 780) / 3) ** 2))})
    _assert_clean(checked, 3)


def test_vacancy_and_migration_figures(checked):
    from layerscope.atomistic.migration import GlidingStudy
    from layerscope.atomistic.vacancies import VacancyStudy

    table = pd.DataFrame({"distance_to_boundary_A": [0.5, 2.0, 4.0], "dG_eV": [2.1, 2.6, 3.0],
                          "converged": [True, True, False]})
    vac = SimpleNamespace(scan=SimpleNamespace(table=table, parameters={"potential": {"potential": "model"}}),
                          structure="twin", composition="LiCoO2", li_fraction=0.5)
    report.figure_to_png(VacancyStudy.figure(vac))
    bands = pd.DataFrame({"direction": ["[100]"] * 3, "gliding": [0.0, 0.02, 0.04], "barrier_eV": [2.3, 1.0, 1.4],
                          "converged": [True, True, False]})
    path = np.linspace(0, 3, 6)
    results = [SimpleNamespace(path_A=path, energies_eV=b * np.sin(np.pi * path / 3)) for b in (2.3, 1.0, 1.4)]
    report.figure_to_png(GlidingStudy.figure(SimpleNamespace(table=bands, results=results, potential="model")))
    _assert_clean(checked, 2)


def test_impedance_figures_with_a_series_and_drt(checked):
    from layerscope.bulk.eis import EISOptions, Impedance, analyse_eis

    f = np.logspace(5, -1, 41)
    jw = 2j * np.pi * f
    spectra = [Impedance(f, 0.02 + r / (1 + jw * r * 1e-3), f"cell {k}") for k, r in enumerate((0.03, 0.05))]
    res = analyse_eis(spectra, EISOptions(circuit="R0-p(R1,C1)", drt=True), labels=[1, 50])
    figs = res.figures()
    assert len(figs) == 3  # Nyquist/Bode, resistances against cycle, DRT
    _assert_clean(checked, 3)


def test_xas_figures_with_voltages(checked):
    from scipy.special import erf

    from layerscope.bulk.xas import XASOptions, analyse_xas
    from layerscope.bulk.xas_readers import XASSpectrum

    e = np.arange(8200.0, 8700.0, 0.5)
    rng = np.random.default_rng(0)
    spectra = [XASSpectrum(e, 0.2 + 0.4 * (1 + erf((e - e0) / 2.1)) + rng.normal(0, 3e-4, e.size), f"NMC {v} V",
                           composition="NMC811", voltage_V=v) for e0, v in ((8340.0, 3.0), (8341.0, 4.0), (8342.0, 4.4))]
    figs = analyse_xas(spectra, XASOptions()).figures()
    assert len(figs) == 2  # spectra and derivatives; edge energy against voltage
    _assert_clean(checked, 2)


def test_normalised_curve_figure(checked, tmp_path):
    from layerscope.cells.curves import CurveOptions, NormalisedCurve, analyse_curve

    q = np.linspace(0, 1, 2000)
    v = 3.6 + 0.6 * q + 0.05 * np.tanh((q - 0.5) / 0.02)
    curve = NormalisedCurve(q, v, "charge", "aligned-csv", tmp_path / "charge.csv")
    res = analyse_curve(curve, CurveOptions())
    res.section()
    _assert_clean(checked, 1)
