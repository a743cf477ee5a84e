"""Issue 19 speed with a wide probe (imgspeed3): the wide-probe ``phases`` path computes exactly the numbers of
the sequential code it replaced.

* ``pipeline._widths`` (the column width at the lattice positions, the wide-probe window, then the resolving
  pass on its own thread) runs on a thread while the stackings and Li-layer sites are made, and
  ``pipeline._lattice_leaks`` on one beside the site measurements (``_measure_li_sites`` waits for it after the
  counting errors): the tables and notes equal those of every call made one after the other on one thread;
* ``interlayers._part_decisions`` (the decisions of every candidate cut of ``split_fill_changes``) takes
  ``_decide``'s tests as numbers: the same +1 / -1 / 0 as ``_decide``'s strings mapped by ``np.select``.
"""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pandas as pd

from layerscope.imaging.interlayers import MIXING_SYSTEMATIC, MIXING_THRESHOLD, _decide, _part_decisions


def _wide_o3(size: int = 384, probe_fwhm_nm: float = 0.15) -> np.ndarray:
    """An O3 LiCoO2 [100] image of ``size``² pixels of 0.01 nm under a 0.15 nm probe at 1e4 e/A^2 (the benchmark's
    scene, benchmarks/imaging_speed.py, cut down)."""
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import degrade, simulate_haadf

    field = size * 0.01
    at = stack([Block("O3", int(np.ceil((field + 0.5) / 0.2341)) + 2)], composition="LiCoO2", zone="100",
               width_nm=field + 0.3, thickness_nm=3, seed=0)
    sim = simulate_haadf(at, pixel_size_nm=0.01, probe_fwhm_nm=probe_fwhm_nm, field_nm=(field, field))
    return np.asarray(degrade(sim.image, dose_e_per_A2=1e4, seed=0).data, dtype=np.float32)


def _now(call, *, name=None):
    """``pipeline._on_thread`` as a plain call on the caller's thread."""
    done: Future = Future()
    done.set_result(call())
    return done


def test_wide_probe_analyse_with_threads_equals_the_sequential_run_exactly(monkeypatch):
    from layerscope.imaging import pipeline
    from layerscope.imaging.options import PhasesOptions

    img = _wide_o3()
    fast = pipeline.analyse(img, PhasesOptions(), pixel_size_nm=0.01)
    monkeypatch.setattr(pipeline, "_on_thread", _now)
    monkeypatch.setattr(pipeline, "_checked_columns", lambda check, columns: (check(), columns()))
    slow = pipeline.analyse(img, PhasesOptions(), pixel_size_nm=0.01, scheduler="sync")
    # the wide path was taken: the window grew past the spacing's and the leaks were unmixed
    assert any(n.startswith("wide columns") for n in fast.result.notes)
    assert len(fast.columns) > 200 and np.isfinite(fast.columns["mixing"]).sum() > 80  # 268 rows, 126 Li sites
    for name in ("columns", "domains", "layers", "interfaces", "glides", "interlayers"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(slow, name), check_exact=True, obj=name)
    assert np.array_equal(fast.phase_map, slow.phase_map)
    assert fast.result.notes == slow.result.notes


def _old_part_decisions(mean, sem, threshold):
    """``interlayers._part_decisions`` before imgspeed3 (strings, then ``np.select``)."""
    d = _decide(mean, np.hypot(sem, MIXING_SYSTEMATIC), threshold)
    return np.select([d == "yes", d == "no"], [1, -1], 0)


def test_numeric_part_decisions_equal_the_string_ones():
    rng = np.random.default_rng(0)
    mean = rng.normal(0.1, 0.1, 20000)
    sem = np.abs(rng.normal(0.0, 0.05, 20000))
    # edge cases: exactly on the +-2 error boundary, NaN and infinite means and errors, zero error
    e0 = float(np.hypot(0.01, MIXING_SYSTEMATIC))
    mean[:6] = [MIXING_THRESHOLD + 2 * e0, MIXING_THRESHOLD - 2 * e0, np.nan, np.inf, -np.inf, 0.5]
    sem[:6] = [0.01, 0.01, 0.01, 0.01, 0.01, np.inf]
    sem[6:9] = [np.nan, 0.0, -np.inf]
    new, old = _part_decisions(mean, sem, MIXING_THRESHOLD), _old_part_decisions(mean, sem, MIXING_THRESHOLD)
    assert np.array_equal(new, old)
    assert set(np.unique(new)) == {-1, 0, 1} and (new == 1).sum() > 1000 and (new == -1).sum() > 1000
    assert new[5] == 0 and new[6] == 0  # an infinite or unknown error decides nothing
