"""The cation-layer spacing read from the numbered columns, not only from the power spectrum (issue 19, imgperiod).

:func:`layerscope.imaging.lattice.fft_lattice` reads the layer period from the c/3 spot and its harmonics; on the 38
wide tuning draws that reading lies -0.9 to +3.0 % off the truth's apparent period, the numbered TM columns' slope
of normal coordinate against layer number -0.3 to +0.2 % (docs/validation.md "imgperiod").
:func:`layerscope.imaging.lattice.layer_spacing_from_columns` fits that slope; with
``pipeline.PERIOD_FROM_COLUMNS`` the pipeline uses it after the layers are numbered and reports it. Truth: columns
drawn at known positions (``imaging_synthetic.layered_lattice``, LiCoO2's c/3 = 0.4683 nm, cation spacing 0.23415
nm); the spectrum's period made 2.5 % long on purpose.
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging_synthetic import draw_columns, layered_lattice, layer_frame
from layerscope.imaging import lattice as _lat
from layerscope.imaging import pipeline

LAYER_NM = 0.4683  # LiCoO2 c/3 (TM-TM)
CATION_NM = LAYER_NM / 2.0
PX = 0.012


def _columns(angle_deg: float = 17.0, seed: int = 0):
    """Normal coordinates (nm) and cation-layer numbers of a 6 x 6 nm lattice's TM columns, 10 pm position noise,
    layers 4 and 5 (TM layers 2 apart in cation numbers) missing, four maxima halfway between two layers."""
    x, y, k = layered_lattice(width_nm=6.0, height_nm=6.0, angle_deg=angle_deg, layer_nm=LAYER_NM)
    keep = ~np.isin(k - k.min(), [4, 5])
    x, y, k = x[keep], y[keep], k[keep]
    _, n = layer_frame(angle_deg)
    rng = np.random.default_rng(seed)
    v = np.column_stack([x, y]) @ n + rng.normal(0.0, 0.010, x.size)
    layer = 2 * (k - k.min())  # cation-layer numbers: TM layers every second
    v[:4] += CATION_NM  # a column fitted on the Li layer above its own: one spacing off its layer's line
    return v, layer


def test_spacing_from_columns_recovers_the_truth_from_a_spectrum_2p5_percent_long():
    v, layer = _columns()
    got = _lat.layer_spacing_from_columns(v, layer, spacing_nm=1.025 * CATION_NM)
    assert got == pytest.approx(CATION_NM, rel=0.002)  # within 0.2 % (the spectrum's: 2.5 %)


def test_a_numbering_that_doubled_the_layers_is_not_taken():
    v, layer = _columns()
    # every layer number doubled: the slope halves, 50 % off the spectrum's spacing -- no fit, the spectrum's kept
    assert _lat.layer_spacing_from_columns(v, 2 * layer, spacing_nm=CATION_NM) is None
    # three layers only: too few to fit
    few = layer <= 4
    assert _lat.layer_spacing_from_columns(v[few], layer[few], spacing_nm=CATION_NM) is None


def _image(angle_deg: float = 17.0) -> np.ndarray:
    x, y, _ = layered_lattice(width_nm=5.0, height_nm=5.0, angle_deg=angle_deg, layer_nm=LAYER_NM)
    clean = draw_columns((417, 417), x, y, 400.0, pixel_size_nm=PX, sigma_nm=0.045, background=20.0)
    return np.random.default_rng(1).poisson(clean).astype(float)


@pytest.mark.parametrize("on, tolerance", [(True, 0.004), (False, None)])
def test_pipeline_reports_the_columns_period_when_the_spectrum_reads_long(on, tolerance, monkeypatch):
    """The spectrum's layer period made 2.5 % long: with the switch the reported period is the truth within 0.4 %;
    without it the spectrum's (the base)."""
    plain = _lat.fft_lattice

    def long_period(*args, **kw):
        est = plain(*args, **kw)
        return _lat.LatticeEstimate(**{**est.__dict__, "layer_period_nm": 1.025 * est.layer_period_nm})

    monkeypatch.setattr(_lat, "fft_lattice", long_period)
    monkeypatch.setattr(pipeline, "PERIOD_FROM_COLUMNS", on)
    res = pipeline.find_atom_columns(_image(), pixel_size_nm=PX, composition="LiCoO2", zone="100")
    if on:
        assert res.lattice.layer_period_nm == pytest.approx(LAYER_NM, rel=tolerance)
        assert any("spacing read from the numbered TM columns" in n for n in res.notes)
    else:
        assert abs(res.lattice.layer_period_nm / LAYER_NM - 1.0) > 0.015
