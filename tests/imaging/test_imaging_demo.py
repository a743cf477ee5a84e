"""The demo section runs on the simulated specimen and scores it against the truth."""

from __future__ import annotations


def test_demo_section(tmp_path):
    from layerscope.imaging.demo import demo_section

    section = demo_section(tmp_path, seed=0)
    assert (tmp_path / "columns.csv").is_file() and (tmp_path / "overlay.png").is_file()
    m = section.metrics
    # The demo specimen (2e5 e/A^2, drift and jitter): the accuracy targets hold.
    assert m["per-column phase accuracy"] >= 0.97
    assert min(m["per-phase accuracy"].values()) >= 0.95
    found, built = (int(v) for v in m["O1 block: layers found / built"].split(" / "))
    assert abs(found - built) <= 1
    assert section.figures and section.tables
