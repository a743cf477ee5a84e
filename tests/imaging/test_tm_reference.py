"""A Li-layer site's TM reference and its sublattice (issue 19, imgspinel5).

Two faults of narrow-probe spinel draws: a TM column whose lattice position lies outside the image was
measured there from the far tail of its column (random draw 4023: 842 where its layer reads 20) and
entered the reference of the Li site next to it (220 for 13-17: a filled spinel site read 0.047, its
segment a wrong "no"); and the sites of a Li layer lying half-way between two multiples of the column
spacing (u counts from the image's origin) flipped between neighbouring lattice indices, so that a
spinel layer's filled and empty sites fell on one sublattice (random draw 4075: 0.138 for 0.25).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerscope.imaging.interlayers import MIXING_THRESHOLD


def test_site_index_about_the_layers_own_offset():
    # 24 sites of one layer 0.25 nm apart, offset half a spacing from the image's origin (u = (k + 0.5) d_t),
    # six of them 0.02 spacings off their lattice site (fitted positions): consecutive indices, so the two
    # sublattices alternate. round(u / d_t) puts neighbours on one index (a sublattice lost).
    from layerscope.imaging.phases import site_index

    d_t = 0.25
    k = np.arange(24)
    noise = np.zeros(k.size)
    noise[[3, 10, 17]], noise[[6, 13, 20]] = 0.02, -0.02
    u = (k + 0.5 + noise) * d_t
    assert np.any(np.diff(np.rint(u / d_t)) != 1)  # the fault's cause is in the layer
    idx = site_index(u, d_t)
    assert np.array_equal(idx - idx[0], k)
    # a layer on the multiples is indexed as before (0.02 spacings off: the plain rounding)
    v = (k + noise) * d_t
    assert np.array_equal(site_index(v, d_t), k)


def _tm_lattice(intensity: np.ndarray) -> pd.DataFrame:
    """TM columns 0.25 nm apart in layers at y = 0 and 0.47 nm, 8 each, with the given intensities (16)."""
    x = np.tile(np.arange(8) * 0.25, 2)
    y = np.repeat([0.0, 0.47], 8)
    return pd.DataFrame({"x_nm": x, "y_nm": y, "intensity": intensity})


def test_a_tm_column_without_intensity_is_no_reference():
    # A Li-layer site between the layers, by column 0 (x = 0.02, y = 0.2 nm): its 4 nearest TM columns are
    # columns 0 and 1 of both layers. Column 0 of the lower layer has no intensity (its lattice position
    # outside the image); the reference is the mean of the 4 nearest columns with one: 1 and 2 of the lower
    # layer, 0 and 1 of the upper (20, 24, 20, 20 -> 21), not the mean of the 3 left of the 4 nearest (20).
    from layerscope.imaging.pipeline import _measure_li_sites

    intensity = np.full(16, 20.0)
    intensity[0] = np.nan
    intensity[2] = 24.0
    tm = _tm_lattice(intensity)
    li = pd.DataFrame({"x_nm": [0.02], "y_nm": [0.2]})
    data = np.ones((40, 160))  # 0.5 x 2 nm of 0.0125 nm pixels
    _measure_li_sites(data, 0.0125, li, tm, sigma_nm=0.03, radius_nm=0.08, counts=False)
    assert abs(li["tm_reference"].iloc[0] - 21.0) < 1e-9


def test_draw_4023_edge_column_leaves_the_reference_alone():
    # NMC811 draw 4023 (4.1e3 e/A^2, 0.044 nm probe, 419 x 419 px of 0.01494 nm): two TM columns at the bottom
    # edge have lattice positions 4.8 px outside the image and read 842 and 896 (the layer's median 20) when
    # measured there, and the filled spinel site by them had a reference of 220 (index 0.047). Now they have
    # no intensity, no Li-layer site's reference is 1.5 times the median (that site's: 13.7), and every spinel segment of the draw is decided right (truth from the simulator).
    from imaging_scenes import phases_of_draw
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import segment_truth

    pm, _, _, extent = phases_of_draw(4023)
    cols = pm.columns
    tm = cols[(cols["kind"] == "TM") & (cols["layer"] >= 0)]
    assert tm["intensity"].isna().sum() >= 2
    assert tm["intensity"].max() < 2.0 * tm["intensity"].median()
    li = cols[cols["kind"] == "Li"]
    ref = li["tm_reference"]
    assert ref.max() < 1.5 * ref.median()  # the wedge and the kagome TM layers: 12-27 about 19
    edge = li.iloc[np.argmin(np.hypot(li["x_nm"] - 2.047, li["y_nm"] - 6.186))]  # the filled site by them
    assert edge["tm_reference"] < 20.0 and edge["mixing"] > 0.4
    truth = draw_scene(4023)[2]
    seg = segment_truth(cols, pm.interlayers, truth)
    spinel = seg[seg["on_li_layer"].astype(bool) & (seg["truth_phase"] == "spinel")]
    assert len(spinel) >= 16
    want = np.where(spinel["truth_fill"] >= MIXING_THRESHOLD, "yes", "no")
    assert (spinel["mixing"].to_numpy() == want).all()


def test_draw_4075_spinel_layer_keeps_its_sublattices():
    # NMC622 draw 4075 (1.7e3 e/A^2): Li layer 15's sites lie 0.49-0.53 spacings off the image's multiples. Its
    # spinel segments (truth 0.25 per octahedral site) now alternate filled / empty sublattices and read
    # 0.25 +- 0.1 ("yes"); the last one read 0.138 with every site on one sublattice.
    from imaging_scenes import phases_of_draw
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import segment_truth

    pm, _, _, _ = phases_of_draw(4075)
    cols = pm.columns
    li = cols[(cols["kind"] == "Li") & (cols["site"] == "octahedral") & (cols["layer"] == 15)].sort_values("u_nm")
    spinel = li[li["environment"] == "spinel"]
    assert len(spinel) >= 20
    filled = spinel["mixing"].to_numpy() > 0.2
    # every filled site on the bright sublattice, every empty one on the dark
    assert (spinel["dark_sublattice"].to_numpy() == ~filled).all()
    seg = segment_truth(cols, pm.interlayers, draw_scene(4075)[2])
    layer = seg[(seg["li_layer"] == 15) & (seg["truth_phase"] == "spinel")]
    assert len(layer) >= 4
    assert (np.abs(layer["li_fill"] - layer["truth_fill"]) < 0.1).all()
    assert (layer["mixing"] == "yes").all()
