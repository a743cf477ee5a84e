#!/usr/bin/env python
"""Draw 2085 traced (issue 19, imgperiod): which part of the spectrum's lattice moves its scores.

Scores (``score_draw``) with the layer period and the direction taken from the harmonic fit (``LAYER_HARMONICS`` 4)
or the first-order spot (None) separately, then with only the detection's minimum separation
(``0.85 * min(d_t, 0.9 * cation)``) taken from the other period::

    PYTHONPATH=$PWD/src .venv/bin/python scripts/imgperiod_trace_2085.py
"""

from __future__ import annotations

from layerscope.imaging import lattice as L
from layerscope.imaging import pipeline as P
from layerscope.simulate import validation

KEYS = ("phases_recall", "phases_precision", "step_accuracy_layered", "fill_accuracy", "fill_accuracy_rim")
PLAIN_FFT, PLAIN_DETECT = L.fft_lattice, P._detect_and_fit


def mixed(period_from, normal_from):
    """``fft_lattice`` with the period of one harmonics setting and the rest of the other's."""
    def f(*a, **k):
        L.LAYER_HARMONICS = period_from
        p = PLAIN_FFT(*a, **k)
        L.LAYER_HARMONICS = normal_from
        n = PLAIN_FFT(*a, **k)
        return L.LatticeEstimate(**{**n.__dict__, "layer_period_nm": p.layer_period_nm})
    return f


def main(seed: int = 2085) -> None:
    for period_from, normal_from in ((4, 4), (None, 4), (4, None), (None, None)):
        L.fft_lattice = mixed(period_from, normal_from)
        r = validation.score_draw(seed)
        print(f"period from H={period_from}, direction from H={normal_from}:", {k: round(r[k], 4) for k in KEYS})
    L.fft_lattice = PLAIN_FFT
    periods = {4: None, None: None}
    for h in periods:  # the cation spacing each setting reads (nm)
        L.LAYER_HARMONICS = h
        image, px, truth = validation.draw_scene(seed)
        sp = P.material_spacings(truth.parameters["chemistry"], truth.parameters["zone"])
        lat = L.fft_lattice(image.astype(float), pixel_size_nm=px, layer_spacing_nm=sp.tm_spacing_nm,
                            inplane_spacing_nm=sp.inplane_spacing_nm)
        periods[h] = (lat.layer_period_nm / 2.0, lat.inplane_period_nm)
    for h, other in ((4, None), (None, 4)):
        L.LAYER_HARMONICS = h
        cat, d_t = periods[other]
        P._detect_and_fit = lambda *a, min_sep, **k: PLAIN_DETECT(*a, min_sep=0.85 * min(d_t, 0.9 * cat), **k)
        r = validation.score_draw(seed)
        print(f"H={h}, detection's separation from H={other} ({cat:.5f} nm):", {k: round(r[k], 4) for k in KEYS})
    P._detect_and_fit, L.LAYER_HARMONICS = PLAIN_DETECT, 4


if __name__ == "__main__":
    main()
