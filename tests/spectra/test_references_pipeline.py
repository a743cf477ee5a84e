"""Reference folders, the whole chain on a simulated line scan and spectrum image, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from layerscope.containers import LineScan, SpectrumImage
from layerscope.errors import InputError
from layerscope.spectra import synthetic as syn
from layerscope.spectra.pipeline import analyse_eels
from layerscope.spectra.references import load_reference_set, write_reference_set


def _refs(e: np.ndarray) -> list[dict]:
    out = []
    for v in (2.0, 3.0):
        out.append({"name": f"Co{int(v)}", "energy_eV": e, "signal": syn.cobalt_l_edge(e, v), "edge": "Co_L",
                    "valence": v, "background_subtracted": True, "source": "simulated (test)"})
    return out


def test_reference_folder_round_trip_and_raw_spectra(tmp_path):
    e = syn.energy_axis(700.0, 850.0, 0.25)
    write_reference_set(tmp_path / "refs", _refs(e))
    rs = load_reference_set(tmp_path / "refs")
    assert [r.valence for r in rs.for_edge("Co_L")] == [2.0, 3.0]
    np.testing.assert_allclose(rs.for_edge("Co_L")[1].signal, syn.cobalt_l_edge(e, 3.0), atol=1e-5)
    # a raw reference gets its power-law background removed
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    bg = 1e13 * e**-3.0
    np.savetxt(raw_dir / "co3.txt", np.column_stack([e, syn.cobalt_l_edge(e, 3.0) + bg]))
    (raw_dir / "references.csv").write_text(
        "file,edge,valence,background_subtracted,source\nco3.txt,Co_L,3,false,simulated\n")
    r = load_reference_set(raw_dir).for_edge("Co_L")[0]
    post = e > 776
    np.testing.assert_allclose(r.signal[post], syn.cobalt_l_edge(e, 3.0)[post], atol=0.02 * bg[post].max())


def test_reference_folder_errors(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load_reference_set(tmp_path / "missing")
    (tmp_path / "references.csv").write_text("file,edge,valence\nx.txt,Co_L,3\n")
    with pytest.raises(InputError, match="missing background_subtracted, source"):
        load_reference_set(tmp_path)


@pytest.fixture(scope="module")
def line_scan():
    return syn.reduction_line_scan(n_points=28, step_nm=0.5, front_position_nm=6.0, front_width_nm=2.5, seed=2)


def test_line_scan_chain_recovers_the_simulated_front(line_scan, tmp_path_factory):
    t = line_scan
    e, le = t.energy_eV, t.lowloss_energy_eV
    step = 0.5
    cl = LineScan.from_array(t.coreloss, step_nm=step, offset_eV=e[0], scale_eV=e[1] - e[0],
                             metadata={"beam_energy_keV": 300.0, "collection_angle_mrad": 30.0})
    ll = LineScan.from_array(t.lowloss, step_nm=step, offset_eV=le[0], scale_eV=le[1] - le[0])
    folder = tmp_path_factory.mktemp("refs")
    # references at the resolution the deconvolution returns (the 1 eV Gaussian)
    g = syn.gaussian(e, e[e.size // 2], 1.0, 1.0)
    g = np.roll(g / g.sum(), -(e.size // 2))
    refs = _refs(e)
    for r in refs:
        r["signal"] = np.real(np.fft.ifft(np.fft.fft(r["signal"]) * np.fft.fft(g)))
    write_reference_set(folder, refs)
    res = analyse_eels(cl, lowloss=ll, edges="Co_L,O_K", references=folder)
    np.testing.assert_allclose(res.maps["t_over_lambda"], t.t_over_lambda, atol=0.01)
    f = res.fronts["Co_L.valence_lc"]
    assert f["position_nm"] == pytest.approx(6.0, abs=0.25)
    assert f["width_nm"] == pytest.approx(2.5, abs=0.5)
    assert np.nanmax(np.abs(res.maps["Co_L.valence_lc"] - t.valence)) < 0.15
    assert res.fronts["O_K.preedge_ratio"]["rising"]
    table = res.table()
    assert len(table) == 28 and {"position_nm", "Co_L.l3_l2", "O_per_Co"} <= set(table.columns)
    assert any("convergence angle unknown" in n for n in res.summary["notes"])


def test_spectrum_image_lazy_equals_eager_and_map_front():
    import dask.array as da

    rng = np.random.default_rng(0)
    e = syn.energy_axis(700.0, 860.0, 0.5)
    rows, cols = np.indices((8, 10))
    f3 = 0.5 * (1 + np.tanh((cols + 0.5 - 5.0) / 1.0))  # Co3+ fraction rises to the right
    edge = (1 - f3)[..., None] * syn.cobalt_l_edge(e, 2.0) + f3[..., None] * syn.cobalt_l_edge(e, 3.0)
    data = rng.poisson(edge + 2e12 * e**-3.0).astype(np.float32)
    si = SpectrumImage.from_array(data, pixel_size_nm=0.8, offset_eV=e[0], scale_eV=e[1] - e[0])
    lazy = SpectrumImage.from_array(da.from_array(data, chunks=(4, 10, -1)), pixel_size_nm=0.8,
                                    offset_eV=e[0], scale_eV=e[1] - e[0])
    a = analyse_eels(si, edges="Co_L")
    b = analyse_eels(lazy, edges="Co_L")
    for k in a.maps:
        np.testing.assert_allclose(b.maps[k], a.maps[k], rtol=1e-4, atol=1e-6, err_msg=k)
    front = a.fronts["Co_L.l3_l2"]
    assert abs(abs(front["angle_deg"]) - 180.0) < 10.0  # L3/L2 falls to the right: normal points left
    assert front["distance_nm"] == pytest.approx(-4.0, abs=0.5)


def test_cli_writes_outputs_and_reports_bad_input(tmp_path, shared_data):
    from typer.testing import CliRunner

    import layerscope.cli.eels  # noqa: F401  (registers the command)
    from layerscope.cli.app import app

    d = shared_data / "eels" / "exspy"
    out = tmp_path / "out"
    run = CliRunner().invoke(app, ["eels", str(d / "coreloss_spectrum.msa"), "--lowloss", str(d / "lowloss_spectrum.msa"),
                                   "--edges", "Mn_L,O_K", "--out", str(out), "--beam-energy-kev", "300",
                                   "--collection-angle-mrad", "13.6", "--convergence-angle-mrad", "24.6"])
    assert run.exit_code == 0, run.output
    s = json.loads((out / "summary.json").read_text())
    assert s["maps"]["t_over_lambda"]["median"] == pytest.approx(0.4724, rel=0.01)  # eXSpy: 0.4724
    assert {"pixels.csv", "report.html", "provenance.json", "edge_spectra.png"} <= {p.name for p in out.iterdir()}
    assert s["provenance"]["inputs"][0]["sha256"]
    bad = CliRunner().invoke(app, ["eels", str(d / "coreloss_spectrum.msa"), "--edges", "Co_L", "--out",
                                   str(tmp_path / "bad")])
    assert isinstance(bad.exception, InputError) and "outside the core-loss energy range" in str(bad.exception)
    assert not (tmp_path / "bad").exists()


def test_cli_low_loss_with_another_dispersion_is_refused(tmp_path, shared_data):
    from typer.testing import CliRunner

    import layerscope.cli.eels  # noqa: F401
    from layerscope.cli.app import app
    from layerscope.errors import CalibrationError

    d = shared_data / "eels"
    # the Mn-oxide core loss is at 0.2 eV/channel, the Cr low loss at 0.1 eV/channel
    run = CliRunner().invoke(app, ["eels", str(d / "exspy" / "coreloss_spectrum.msa"), "--lowloss",
                                   str(d / "exspy" / "Cr_L_ll.hspy"), "--separate-lowloss", "--edges", "Mn_L",
                                   "--out", str(tmp_path / "o")])
    assert isinstance(run.exception, CalibrationError)
    assert "share the dispersion" in str(run.exception) and "Rebin" in str(run.exception)


def test_valence_methods_side_by_side_and_the_recommended_one(line_scan, tmp_path):
    """Same instrument (references at the unknown's 1 eV resolution): the linear combination is recommended."""
    t = line_scan
    e, le = t.energy_eV, t.lowloss_energy_eV
    cl = LineScan.from_array(t.coreloss, step_nm=0.5, offset_eV=e[0], scale_eV=e[1] - e[0])
    ll = LineScan.from_array(t.lowloss, step_nm=0.5, offset_eV=le[0], scale_eV=le[1] - le[0])
    g = syn.gaussian(e, e[e.size // 2], 1.0, 1.0)
    g = np.roll(g / g.sum(), -(e.size // 2))
    refs = _refs(e)
    for r in refs:
        r["signal"] = np.real(np.fft.ifft(np.fft.fft(r["signal"]) * np.fft.fft(g)))
    # the simulated low loss has a 1 eV zero-loss peak; references measured at 1 eV as well
    write_reference_set(tmp_path / "refs", [{**r, "resolution_eV": 1.0} for r in refs])
    res = analyse_eels(cl, lowloss=ll, edges="Co_L", references=tmp_path / "refs")
    v = res.summary["valence"]["Co_L"]
    assert set(v["methods"]) == {"valence_l3", "valence_interp", "valence_l3l2", "valence_lc"}
    assert v["recommended"] == "valence_lc"
    assert np.nanmax(np.abs(res.maps["Co_L.valence_lc"] - t.valence)) < 0.05
    assert np.nanmax(np.abs(res.maps["Co_L.valence_l3"] - t.valence)) < 0.25
    assert all(np.all(np.isfinite(res.maps[f"Co_L.{m}_sigma"])) for m in v["methods"])
    assert not any(f["code"].startswith("Co_L") for f in res.summary["flags"])
