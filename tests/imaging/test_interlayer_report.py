"""The interlayer map in the `phases` outputs: interlayers.png and the report's Li-layer fill lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imaging_scenes import PX, degraded_stack, noisy
from layerscope.imaging.report import FILL_COLOURS, _fill_reading, _segment_lines, interlayer_figure


def test_fill_reading_follows_environment_then_decision():
    table = pd.DataFrame({"environment": ["layered", "layered", "layered", "rock_salt", "spinel", "rock_salt"],
                          "mixing": ["no", "yes", "uncertain", "yes", "no", "uncertain"]})
    assert list(_fill_reading(table)) == ["Li (no mixing)", "Li/TM mixing", "mixing uncertain", "rock salt (TM-filled)",
                                          "spinel-like (half-filled)", "rock salt (TM-filled)"]


def test_segment_lines_run_through_the_segment_sites():
    # Li layer 3: sites every 0.28 nm along u = x; two segments of 4 sites. Layer 5 has no site: a point.
    u = np.arange(8) * 0.28
    cols = pd.DataFrame({"kind": "Li", "layer": 3, "u_nm": u, "x_nm": u + 1.0, "y_nm": 2.0, "site": "octahedral"})
    inter = pd.DataFrame({"li_layer": [3, 3, 5], "u_start_nm": [0.0, 1.12, 0.0], "u_end_nm": [0.84, 1.96, 0.5],
                          "x_nm": [1.42, 2.54, 0.7], "y_nm": [2.0, 2.0, 3.0]})
    lines = _segment_lines(cols, inter, pixel_size_nm=0.01)
    assert [len(p) for p in lines] == [4, 4, 2]
    np.testing.assert_allclose(lines[0][[0, -1]], [[99.5, 199.5], [183.5, 199.5]], atol=1e-9)  # pixels, centres at +0.5
    np.testing.assert_allclose(lines[1][0], [211.5, 199.5], atol=1e-9)
    np.testing.assert_allclose(lines[2], [[69.5, 299.5]] * 2, atol=1e-9)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.report import write_phase_map

    sim, _ = degraded_stack()
    img = noisy(sim, 1e4)
    pm = map_phases(img, pixel_size_nm=PX, zone="100", composition="LiCoO2")
    out = tmp_path_factory.mktemp("interlayer_report") / "out"
    write_phase_map(pm, out, img)
    return img, pm, out


def test_interlayer_map_is_written_and_drawn_segment_by_segment(written):
    from matplotlib.collections import LineCollection

    from layerscope.report.figures import layout_problems

    img, pm, out = written
    inter = pd.read_csv(out / "interlayers.csv")
    assert (out / "interlayers.png").stat().st_size > 10_000
    fig = interlayer_figure(img, pm.columns, pm.interlayers, PX)
    assert layout_problems(fig) == []
    for ax in fig.axes[:2]:
        (lc,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(lc.get_segments()) == len(inter)
    # The degraded scene holds a rock-salt block and an O3 block with Li/TM mixing 0.2: both readings are drawn.
    readings = pd.Series(_fill_reading(inter)).value_counts()
    assert readings.get("rock salt (TM-filled)", 0) > 0 and readings.get("Li/TM mixing", 0) > 0
    # Every drawn vertex is a Li-layer site of the column table (within 1e-6 px).
    li = pm.columns[pm.columns["kind"] == "Li"][["x_nm", "y_nm"]].to_numpy() / PX - 0.5
    vertices = np.concatenate(_segment_lines(pm.columns, pm.interlayers, PX))
    d = np.min(np.hypot(*(vertices[:, None, :] - li[None, :, :]).transpose(2, 0, 1)), axis=1)
    assert d.max() < 1e-6


def test_report_counts_the_fill_readings_of_interlayers_csv(written):
    _, _, out = written
    inter = pd.read_csv(out / "interlayers.csv")
    counts = pd.Series(_fill_reading(inter)).value_counts()
    html = (out / "report.html").read_text()
    expected = " / ".join(str(int(counts.get(k, 0))) for k in FILL_COLOURS)
    assert f"<b>{expected}</b><span>interlayer segments by Li-layer fill" in html
    assert "Interlayer map (interlayers.csv)" in html
    layered = inter[(inter["environment"] == "layered") & (inter["step"] != "O1")]
    level = layered["clean_level"].iloc[0]
    assert f"other steps: {level:.4f} ±" in html
