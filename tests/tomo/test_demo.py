"""The tomography section of ``layerscope demo``: counts against the phantom's truth."""

from __future__ import annotations


def test_demo_section_counts_particles_and_cracks_exactly(tmp_path):
    from layerscope.tomo.demo import demo_section

    section = demo_section(tmp_path / "tomo", seed=0)
    table = section.tables[0].dataframe.set_index("quantity")
    assert table.loc["particles", "measured"] == table.loc["particles", "truth"] == 4
    assert table.loc["cracks", "measured"] == table.loc["cracks", "truth"] == 4
    assert table.loc["pores", "measured"] == table.loc["pores", "truth"] == 3  # the near-surface pore too (was 2 of 3)
    assert {"particles.csv", "cracks.csv", "summary.json"} <= {p.name for p in (tmp_path / "tomo").iterdir()}
    assert len(section.figures) == 2 and all(f.caption for f in section.figures)
