"""The void-site gate says what it did: a ``phases`` flag (issue 19, imgspinel8).

``pipeline._site_in_void`` marks no Li-layer site where the image's TM columns read fewer than
``VOID_SPREAD_Z`` robust spreads above the void level (``support_spread_z``); ``pipeline.void_gate_flags``
turns that decision, and a pass with little margin (below ``VOID_FLAG_Z``), into a flag in summary.json's
``flags`` (printed by the CLI and the report like the clipping flag). Truth: the gate's own numbers (z and the
sites the rule marks before it) and draw 56, whose marks are known wrong (docs/validation.md "imgvoid8").
"""

from __future__ import annotations

import pytest

from imaging_scenes import PX, noisy
from layerscope.imaging import pipeline
from layerscope.imaging.pipeline import map_phases
from test_void_sites import _void_scene


@pytest.mark.parametrize(("z", "n", "codes"), [
    (1.12, 10, ["void_marks_off"]),       # draw 56: below the gate
    (float("nan"), 3, ["void_marks_off"]),  # too few positions: the gate marks nothing
    (1.84, 7, ["void_marks_marginal"]),   # draw 70's margin (5.6e2 e/A^2)
    (2.0, 7, []),                         # at VOID_FLAG_Z: not flagged
    (1.12, 0, []),                        # nothing the gate decides
])
def test_the_flag_follows_the_gate(z, n, codes):
    flags = pipeline.void_gate_flags(z, n)
    assert [f["code"] for f in flags] == codes
    for f in flags:
        assert f"{n} Li-layer sites" in f["message"]


def test_draw_56_says_its_void_marks_are_off():
    # Random draw 56 (NMC811 [110], 2.3e3 e/A^2, 0.157 nm probe): 10 sites the rule would mark, 5 of them real;
    # z measured 1.12 (imgvoid8); along the harmonics' layer direction and period (session 32) 7 sites, z 1.13: the
    # flag with those numbers in summary.json and in the report section.
    from layerscope.imaging.report import phase_section
    from layerscope.report.html import render_html
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(56)
    p = truth.parameters
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    z, n = pm.result.void_gate
    assert z == pytest.approx(1.13, abs=0.01) and n == 7
    flags = [f for f in pm.summary["flags"] if f["code"].startswith("void_marks")]
    assert [f["code"] for f in flags] == ["void_marks_off"]
    assert "7 Li-layer sites" in flags[0]["message"] and "1.13 robust spreads" in flags[0]["message"]
    assert "void_marks_off" in render_html([phase_section(pm, image)], title="56")


def test_a_clean_void_scene_carries_no_void_flag():
    # The 0.8 nm void across a spinel block at 1e4 e/A^2 (narrow probe): 5 sites marked, all inside the void
    # (test_void_sites); its columns read 3.03 spreads above the void level (measured): no flag.
    pm = map_phases(noisy(_void_scene(), 1e4, seed=1), pixel_size_nm=PX, zone="100", composition="LiCoO2")
    z, n = pm.result.void_gate
    assert z >= pipeline.VOID_FLAG_Z + 0.5 and n >= 4
    assert not [f for f in pm.summary["flags"] if f["code"].startswith("void_marks")]


def test_the_cli_prints_the_flag_and_writes_it(tmp_path, capsys):
    # `layerscope phases` on the void scene: at 1e3 e/A^2 (seed 1) its columns read 1.20 spreads above the void
    # level (measured; 4 sites the rule would mark) -> flagged on the CLI line and in summary.json; at 1e4 not.
    import json

    import numpy as np

    from layerscope.cli import run

    for dose, flagged in ((1e3, True), (1e4, False)):
        src = tmp_path / f"void_{dose:g}.npy"
        np.save(src, noisy(_void_scene(), dose, seed=1))
        out = tmp_path / f"out_{dose:g}"
        assert run(["phases", str(src), "--pixel-size-nm", str(PX), "--no-figures", "--out", str(out)]) == 0
        line = capsys.readouterr().out
        codes = [f["code"] for f in json.loads((out / "summary.json").read_text())["flags"]]
        assert ("void_marks_off" in codes) == flagged, (dose, codes)
        assert ("FLAG void_marks_off" in line) == flagged
