"""Issue 19 speed (2048² ``layerscope phases`` <= 3 s on 2 cores): what a new process imports, and the
two-thread run of ``analyse`` computes exactly the numbers of the sequential one.

* a new ``phases --no-figures`` process imports neither ``distributed`` (Dask's threaded scheduler
  is passed as a function) nor tqdm (no bar outside a terminal) nor Matplotlib, HyperSpy,
  RosettaSciIO, torch, scipy.stats or scikit-learn; the CLI's parser and ``layerscope.imaging``
  import nothing heavy, not even importlib.metadata (the version is read on first use);
* ``analyse`` runs the layered-oxide check (and the provenance) on the calling thread while the
  column finder runs on a second one (``pipeline._checked_columns``): the tables are those of the
  check and the finder called one after the other, and the check's refusal still decides.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from imaging_scenes import PX, degraded_stack, noisy
from layerscope.errors import InputError

#: Modules a new ``phases --no-figures`` process must not import (distributed: only for
#: --scheduler tcp://; tqdm: bars only on a terminal; Matplotlib and Pillow: figures only;
#: HyperSpy/RosettaSciIO: only for microscope files; torch: the enhancer only; scipy.stats and
#: scikit-learn: not used by the analysis, each 0.1-0.3 s CPU to import).
NOT_FOR_PHASES = ("distributed", "tqdm", "matplotlib", "PIL", "hyperspy", "rsciio", "torch", "scipy.stats",
                  "sklearn")
#: Nothing heavy is imported to parse a command line (``layerscope --help`` stays fast);
#: importlib.metadata (``layerscope.__version__``, the provenance's library versions) on first use.
NOT_FOR_CLI = ("numpy", "pandas", "scipy", "dask", "importlib.metadata", *NOT_FOR_PHASES)


def _modules_after(code: str) -> tuple[list[str], str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {NOT_FOR_CLI!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return eval(out.stdout.strip().splitlines()[-1]), out.stdout


def test_importing_the_cli_imports_nothing_heavy():
    loaded, _ = _modules_after("import layerscope.cli")
    assert loaded == []


def test_importing_the_imaging_package_imports_nothing_heavy():
    loaded, _ = _modules_after("import layerscope.imaging")
    assert loaded == []


def test_the_version_is_read_on_first_use():
    loaded, stdout = _modules_after("import layerscope\nprint(repr(layerscope.__version__))")
    assert loaded == ["importlib.metadata"] and stdout.splitlines()[0].strip("'")[:1].isdigit()


def test_a_phases_process_imports_no_distributed_tqdm_or_matplotlib(tmp_path):
    sim, _ = degraded_stack()
    path = tmp_path / "scene.npy"
    np.save(path, noisy(sim, 1e4, seed=2).astype(np.float32))
    out = tmp_path / "out"
    loaded, stdout = _modules_after(
        "from layerscope.cli import run\n"
        f"assert run(['phases', {str(path)!r}, '--pixel-size-nm', '{PX}', '--out', {str(out)!r}, '--no-figures']) == 0")
    assert (out / "columns.csv").is_file() and (out / "interlayers.csv").is_file() and (out / "phase_map.tif").is_file()
    assert not any(m in loaded for m in NOT_FOR_PHASES), loaded
    assert {"numpy", "pandas", "scipy"} <= set(loaded)  # the probe sees what was imported


def _sequential(check, columns):
    """``pipeline._checked_columns`` as it was: the check, then the column finder, one thread."""
    return check(), columns()


def test_two_thread_analyse_equals_the_sequential_run_exactly(monkeypatch):
    from layerscope.imaging import pipeline
    from layerscope.imaging.options import PhasesOptions

    sim, _ = degraded_stack()
    img = noisy(sim, 1e3, seed=5)
    fast = pipeline.analyse(img, PhasesOptions(), pixel_size_nm=PX)  # two threads, threaded refinement
    monkeypatch.setattr(pipeline, "_checked_columns", _sequential)
    slow = pipeline.analyse(img, PhasesOptions(), pixel_size_nm=PX, scheduler="sync")  # one thread, via Dask
    for name in ("columns", "domains", "layers", "interfaces", "glides", "interlayers"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(slow, name), check_exact=True, obj=name)
    assert np.array_equal(fast.phase_map, slow.phase_map)
    assert len(fast.columns) > 500 and fast.domains["phase"].nunique() >= 3  # a real scene, not an empty one
    drop = ("timings_s",)
    assert {k: v for k, v in fast.summary.items() if k not in drop} == \
        {k: v for k, v in slow.summary.items() if k not in drop}
    assert fast.provenance.inputs == slow.provenance.inputs and fast.provenance.parameters == slow.provenance.parameters


def test_the_checks_refusal_wins_at_once_over_the_column_finder():
    from layerscope.imaging.pipeline import _checked_columns

    def refuse():
        raise InputError("not a layered oxide")

    def slow_failure():
        time.sleep(3.0)
        raise InputError("only 3 atom columns were found")

    t0 = time.perf_counter()
    with pytest.raises(InputError, match="not a layered oxide"):
        _checked_columns(refuse, slow_failure)
    assert time.perf_counter() - t0 < 2.0  # not held until the finder ends (3 s)
    with pytest.raises(InputError, match="only 3 atom columns"):  # the check passed: the finder's own error
        _checked_columns(lambda: "ok", slow_failure)
    assert _checked_columns(lambda: 1.5, lambda: "columns") == (1.5, "columns")


def _square_or_fail(x, *, fail_at):
    if x == fail_at:
        raise ValueError(f"item {x}")
    time.sleep(0.01 * (5 - x % 5))  # later items finish first
    return x * x


def test_map_tasks_keeps_order_and_raises_the_failing_item():
    from layerscope.parallel import map_tasks

    items = list(range(12))
    assert map_tasks(_square_or_fail, items, fail_at=-1) == [x * x for x in items]
    assert map_tasks(_square_or_fail, items, fail_at=-1, scheduler="sync") == [x * x for x in items]
    with pytest.raises(ValueError, match="item 7"):
        map_tasks(_square_or_fail, items, fail_at=7)
