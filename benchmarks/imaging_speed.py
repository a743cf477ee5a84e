"""Where the time of ``layerscope phases`` goes on a 2048² image (issue 19: ≤ 3 s on 2 cores).

One simulated O3 LiCoO2 [100] image (fast incoherent HAADF model, 3 nm thick, 2048 × 2048 pixels
of 0.01 nm, 1e4 e/Å², Poisson noise), saved as ``.npy``, then the steps of ``layerscope phases``
timed one by one in this process (best of ``--repeats``; wall and CPU seconds):

* ``load`` -- :func:`layerscope.imaging.options.image_input` (read the file once);
* ``columns`` -- :func:`layerscope.imaging.pipeline.find_atom_columns` inside ``analyse`` (FFT
  lattice, detection, batched Poisson-ML refinement, layers, Li-layer sites, intensities), from
  the run's own ``timings_s``;
* ``classification`` -- the rest of ``analyse`` (layered-oxide check, phase labels, mixing,
  domains, phase map, quantities, interlayers);
* ``write`` -- :func:`layerscope.imaging.report.write_phase_map` without figures (the tables,
  ``columns.csv``, ``phase_map.tif``, ``summary.json``), and ``write + figures`` with them
  (``overlay.png``, ``report.html``);
* ``phases --no-figures`` / ``phases`` -- the whole command through :func:`layerscope.cli.run`
  (in this process: the modules are imported already);
* ``process --no-figures`` -- ``python -m layerscope phases ... --no-figures`` as a new process
  (interpreter start-up and imports included; CPU of the child from ``getrusage``).

``--fresh N`` runs ``phases --no-figures`` (and, with ``--figures``, ``phases``) N times in new
processes through a probe that times the stages of the process (Python start-up, importing the
CLI, the command through :func:`layerscope.cli.run`, and in it the imports of the phases path and the
run's own ``timings_s``); ``--compare-src DIR`` runs the same probe with ``PYTHONPATH=DIR``
(e.g. the main checkout's ``src``) interleaved with this tree's, so that before and after meet the
same load: the side-by-side anchor of a speed change.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/imaging_speed.py [--repeats 3] [--profile 25]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/imaging_speed.py --repeats 0 --fresh 5 --compare-src ../main/src

``--cli N`` times plain ``python -m layerscope phases IMAGE --out DIR`` processes (what a user
runs; no probe), ``--no-figures`` and with ``--figures`` also the default, N rounds, interleaved
with ``--compare-src``'s code when given; wall and CPU (user + sys of the child) per run, minimum
and median, with the load average:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/imaging_speed.py --repeats 0 --cli 5 --figures --compare-src ../main/src

``--profile N`` prints the N most expensive functions (cumulative) of one ``analyse`` under
cProfile. The load average is printed with the timings: on a shared machine the wall time is
only meaningful with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PX = 0.01  # nm per pixel
SIZE = 2048
DOSE = 1e4  # e/A^2


def make_image(size: int = SIZE, seed: int = 0, probe_fwhm_nm: float = 0.08) -> np.ndarray:
    """The simulated, Poisson-degraded O3 image (float32 counts); ``probe_fwhm_nm`` 0.15: the wide-probe path."""
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import degrade, simulate_haadf

    field = size * PX
    n_layers = int(np.ceil((field + 0.5) / 0.2341)) + 2  # cation layers c/6 = 0.234 nm apart
    at = stack([Block("O3", n_layers)], composition="LiCoO2", zone="100", width_nm=field + 0.3, thickness_nm=3,
               seed=seed)
    sim = simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=probe_fwhm_nm, field_nm=(field, field))
    return np.asarray(degrade(sim.image, dose_e_per_A2=DOSE, seed=seed).data, dtype=np.float32)


def _timed(func, *args, **kwargs):
    w0, c0 = time.perf_counter(), time.process_time()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - w0, time.process_time() - c0


def steps(path: Path, workdir: Path) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds of every step of one run."""
    from layerscope.cli import run
    from layerscope.imaging.options import PhasesOptions, image_input
    from layerscope.imaging.pipeline import analyse
    from layerscope.imaging.report import write_phase_map

    t: dict[str, tuple[float, float]] = {}
    inp, w, c = _timed(image_input, path, pixel_size_nm=PX)
    t["load"] = (w, c)
    pm, w, c = _timed(analyse, inp, PhasesOptions())
    cols_w = pm.result.timings_s["total"]
    t["columns"] = (cols_w, float("nan"))
    t["classification"] = (w - cols_w, float("nan"))
    t["analyse"] = (w, c)
    for name, figures in (("write", False), ("write + figures", True)):
        out = workdir / name.replace(" ", "").replace("+", "_")
        _, w, c = _timed(write_phase_map, pm, out, inp.data, figures=figures)
        t[name] = (w, c)
    for name, extra in (("phases --no-figures", ["--no-figures"]), ("phases", [])):
        out = workdir / f"cli{len(extra)}"
        code, w, c = _timed(run, ["phases", str(path), "--pixel-size-nm", str(PX), "--out", str(out), "--overwrite",
                                  *extra])
        assert code == 0, f"layerscope phases failed ({code})"
        t[name] = (w, c)
    t["process --no-figures"] = _process(path, workdir / "process")
    t["_columns"] = (float(len(pm.columns)), float(pm.summary["columns"]["detected"]))
    return t


def _process(path: Path, out: Path, *, figures: bool = False, src: str | None = None) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of ``python -m layerscope phases`` in a new Python process.

    ``figures``: with ``overlay.png`` and ``report.html`` (the default of the command) instead of
    ``--no-figures``; ``src``: run with ``PYTHONPATH=src`` (another checkout's code).
    """
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "layerscope", "phases", str(path), "--pixel-size-nm", str(PX),
                    *([] if figures else ["--no-figures"]), "--out", str(out), "--overwrite"], check=True,
                   capture_output=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - w0, cpu


def cli_runs(path: Path, workdir: Path, *, n: int, figures: bool, compare_src: str | None) -> dict[str, dict]:
    """``n`` rounds of plain ``python -m layerscope phases`` processes, this tree and ``compare_src`` interleaved.

    Each round runs ``--no-figures`` (and, with ``figures``, the default with figures) once per
    tree, the trees' order alternating from round to round so that both meet the same load.
    Returns per tree and mode the wall and CPU seconds of every run, their minimum and median,
    and the 1-minute load average seen at each run.
    """
    trees = {"this tree": None, **({f"PYTHONPATH={compare_src}": compare_src} if compare_src else {})}
    modes = [False, True] if figures else [False]
    runs: dict[str, dict[str, list]] = {f"{t} | {'phases' if f else 'phases --no-figures'}": {"wall": [], "cpu": [],
                                                                                              "load": []}
                                        for t in trees for f in modes}
    for i in range(n):
        order = list(trees.items()) if i % 2 == 0 else list(trees.items())[::-1]
        for f in modes:
            for name, src in order:
                key = f"{name} | {'phases' if f else 'phases --no-figures'}"
                w, c = _process(path, workdir / f"cli{i}{int(f)}{bool(src)}", figures=f, src=src)
                for k, v in (("wall", w), ("cpu", c), ("load", os.getloadavg()[0])):
                    runs[key][k].append(v)
    for r in runs.values():
        for k in ("wall", "cpu"):
            r[f"min {k}"], r[f"median {k}"] = float(np.min(r[k])), float(np.median(r[k]))
    return runs


def _print_cli(runs: dict[str, dict], n: int) -> None:
    print(f"new `python -m layerscope phases` processes, {n} rounds (wall / CPU user+sys s):")
    for key, r in runs.items():
        print(f"  {key}: min {r['min wall']:.2f} / {r['min cpu']:.2f}, median {r['median wall']:.2f} / "
              f"{r['median cpu']:.2f}; load average {min(r['load']):.1f}-{max(r['load']):.1f}")


#: The child of :func:`fresh_process`: stage marks (wall, CPU since the interpreter started) as JSON.
_PROBE = r"""
import json, os, resource, sys, time
marks = [("start", time.perf_counter(), time.process_time())]
def mark(name):
    marks.append((name, time.perf_counter(), time.process_time()))
import layerscope.cli
mark("import cli")
try:  # a one-command process, as `python -m layerscope` marks it (main; absent before speed4)
    from layerscope.cli.app import one_command_process
    one_command_process()
except ImportError:
    pass
from layerscope.cli import run
window = {}
try:  # CPU of the two threads of analyse (this tree's pipeline._checked_columns; absent before it)
    from layerscope.imaging import pipeline as _pl
    _inner = _pl._checked_columns
    def _timed_window(check, columns):
        def timed(func, key):
            def call():
                t = time.thread_time()
                try:
                    return func()
                finally:
                    window[key] = time.thread_time() - t
            return call
        c0 = time.process_time()
        window["cpu_before"] = c0
        try:
            return _inner(timed(check, "check"), timed(columns, "columns"))
        finally:
            window["cpu_window"] = time.process_time() - c0
    _pl._checked_columns = _timed_window
except (ImportError, AttributeError):
    pass
path, out, px, figures = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
code = run(["phases", path, "--pixel-size-nm", px, "--out", out, "--overwrite"] + ([] if figures else ["--no-figures"]))
mark("run")
ru = resource.getrusage(resource.RUSAGE_SELF)
summary = json.load(open(os.path.join(out, "summary.json")))
print(json.dumps({"code": code, "marks": marks, "timings_s": summary["timings_s"], "cpu_s": ru.ru_utime + ru.ru_stime,
                  "window": window, "cpu_end": time.process_time(),
                  "modules": sorted(m for m in ("dask", "tqdm", "matplotlib", "distributed") if m in sys.modules)}))
"""


def fresh_process(path: Path, out: Path, *, figures: bool, src: str | None = None) -> dict[str, float]:
    """Wall and CPU seconds of one new ``layerscope phases`` process, whole and by stage.

    ``start-up``: from launching the process to the first line of the probe (the interpreter);
    ``import cli``: :mod:`layerscope.cli`; ``command``: :func:`layerscope.cli.run` (parsing, the
    imports of the phases path, the analysis, the writing); ``analyse`` (wall, from the run's
    ``timings_s``); ``total``: launch to exit, CPU from ``getrusage`` of the child.
    """
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PROBE, str(path), str(out), str(PX), "1" if figures else "0"],
                          check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = json.loads(done.stdout.strip().splitlines()[-1])
    assert res["code"] == 0, done.stderr[-2000:]
    (_, w_start, c_start), (_, w_cli, c_cli), (_, w_run, c_run) = res["marks"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    w = res["window"]
    if "cpu_window" in w:  # the wall time the same CPU would take on 2 idle cores (see _two_core_estimate)
        c_end = res["cpu_end"]
        parts = dict(before=w["cpu_before"], check=w["check"], columns=w["columns"],
                     pool=w["cpu_window"] - w["check"] - w["columns"], after=c_end - w["cpu_before"] - w["cpu_window"])
        est = _two_core_estimate(**parts)
    else:
        est, parts = float("nan"), {}
    return {"2-core estimate": est, **{f"cpu {k}": v for k, v in parts.items()}, "total wall": wall, "total cpu": cpu, "import cli wall": w_cli - w_start, "import cli cpu": c_cli - c_start,
            "command wall": w_run - w_cli, "command cpu": c_run - c_cli, "analyse wall": res["timings_s"]["map_phases"],
            "start-up wall": wall - (w_run - w_start), "_modules": res["modules"]}


def _two_core_estimate(*, before: float, check: float, columns: float, pool: float, after: float) -> float:
    """Wall seconds of a ``phases`` process on 2 idle cores, from the CPU seconds of its parts.

    ``before``: the single-threaded start (interpreter start-up, imports, parsing, reading);
    then the layered-oxide check (``check``, this thread) beside the column finder (``columns``,
    a second thread, which hands ``pool`` CPU seconds of refinement blocks to a 2-thread pool):
    that window takes at least the longer thread and at least half of its CPU; ``after``: the
    single-threaded rest (classification, interlayers, phase map, writing). An estimate for a
    machine whose cores are never idle: the CPU seconds themselves grow with the load.
    """
    window = max(check, columns + pool / 2.0, (check + columns + pool) / 2.0)
    return before + window + after


def fresh_runs(path: Path, workdir: Path, *, n: int, figures: bool, compare_src: str | None) -> dict[str, dict]:
    """``n`` new processes of this tree (and of ``compare_src``, interleaved); best of each stage."""
    trees = {"this tree": None, **({f"PYTHONPATH={compare_src}": compare_src} if compare_src else {})}
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    for i in range(n):
        for name, src in trees.items():
            runs[name].append(fresh_process(path, workdir / f"fresh{i}{len(runs[name])}{bool(src)}", figures=figures,
                                            src=src))
    return {name: {k: min(r[k] for r in rs) if not k.startswith("_") else rs[0][k] for k in rs[0]}
            for name, rs in runs.items()}


def breakdown(path: Path) -> dict[str, float]:
    """CPU seconds of the parts of ``analyse`` called one by one (the same calls, same arguments)."""
    from layerscope.imaging import applicability, domains, quantities
    from layerscope.imaging.interlayers import interlayer_table
    from layerscope.imaging.options import PhasesOptions, image_input
    from layerscope.imaging.pipeline import analyse, find_atom_columns

    inp = image_input(path, pixel_size_nm=PX)
    pm = analyse(inp, PhasesOptions())  # warm: imports, and the table the later parts take
    res = pm.result
    cation = res.spacings.cation_spacing_nm
    parts = {
        "layered-oxide check": lambda: applicability.check_layered_oxide(inp.data, pixel_size_nm=PX,
                                                                         composition="LiCoO2", zone="100"),
        "find_atom_columns": lambda: find_atom_columns(inp.data, pixel_size_nm=PX),
        "interlayer_table": lambda: interlayer_table(pm.columns),
        "domains + phase map": lambda: (domains.find_domains(pm.columns, inplane_spacing_nm=res.lattice.inplane_period_nm,
                                                             cation_spacing_nm=cation),
                                        domains.phase_label_image(pm.columns, shape=res.shape, pixel_size_nm=PX,
                                                                  max_distance_nm=1.2 * cation)),
        "layers + quantities": lambda: quantities.quantities(pm.columns, quantities.layer_table(pm.columns, res), res,
                                                             phase_map=pm.phase_map, map_pixel_nm=pm.phase_map_pixel_nm),
        "analyse (all)": lambda: analyse(inp, PhasesOptions()),
    }
    out = {}
    for name, call in parts.items():
        c0 = time.process_time()
        call()
        out[name] = time.process_time() - c0
    return out


def profile(path: Path, top: int) -> None:
    """cProfile of one ``analyse`` (cumulative time, the ``top`` functions)."""
    import cProfile
    import pstats

    from layerscope.imaging.options import PhasesOptions, image_input
    from layerscope.imaging.pipeline import analyse

    inp = image_input(path, pixel_size_nm=PX)
    prof = cProfile.Profile()
    prof.enable()
    analyse(inp, PhasesOptions())
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def _print_steps(runs: list[dict], parts: dict[str, float]) -> dict:
    best = {k: (min(r[k][0] for r in runs), min(r[k][1] for r in runs)) for k in runs[0] if not k.startswith("_")}
    n_rows, n_detected = runs[0]["_columns"]
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; {int(n_rows)} table rows, "
          f"{int(n_detected)} detected columns; best of {len(runs)} (wall / CPU s):")
    for k, (w, c) in best.items():
        print(f"  {k:22s} {w:6.2f}  {c:6.2f}")
    print("CPU seconds of the parts of analyse (one run each):")
    for k, c in parts.items():
        print(f"  {k:22s} {c:6.2f}")
    return best


def _print_fresh(label: str, fresh: dict[str, dict], n: int) -> None:
    print(f"new processes, {label}: best of {n}, load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"(wall / CPU s)")
    for tree, r in fresh.items():
        print(f"  {tree}: start-up {r['start-up wall']:.2f} wall | import cli {r['import cli wall']:.2f} / "
              f"{r['import cli cpu']:.2f} | command {r['command wall']:.2f} / {r['command cpu']:.2f} (analyse "
              f"{r['analyse wall']:.2f} wall) | total {r['total wall']:.2f} / {r['total cpu']:.2f}; "
              f"2-core estimate {r['2-core estimate']:.2f} (CPU: " + ", ".join(
                  f"{k[4:]} {v:.2f}" for k, v in r.items() if k.startswith("cpu ")) + "); "
              f"imported: {', '.join(r['_modules']) or 'no dask, tqdm, matplotlib, distributed'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="in-process runs of every step (0: none)")
    ap.add_argument("--size", type=int, default=SIZE)
    ap.add_argument("--probe-fwhm-nm", type=float, default=0.08,
                    help="probe of the simulated image (nm); 0.15 takes the wide-probe site window and unmixing")
    ap.add_argument("--image", type=Path, default=None, help="use this .npy (0.01 nm pixels) instead of simulating")
    ap.add_argument("--profile", type=int, default=0, help="print the N most expensive functions of one analyse")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--fresh", type=int, default=0, help="new phases --no-figures processes, stage by stage")
    ap.add_argument("--figures", action="store_true", help="with --fresh: also new phases processes with figures")
    ap.add_argument("--compare-src", default=None, help="with --fresh / --cli: the same with PYTHONPATH=this, interleaved")
    ap.add_argument("--cli", type=int, default=0, help="rounds of plain `python -m layerscope phases` processes "
                                                       "(--no-figures; with --figures also the default)")
    args = ap.parse_args()
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = args.image or tmp / "o3_2048.npy"
        if args.image is None:
            t0 = time.perf_counter()
            np.save(path, make_image(args.size, probe_fwhm_nm=args.probe_fwhm_nm))
            print(f"image {args.size}² at {PX} nm/px, {DOSE:g} e/A^2, probe {args.probe_fwhm_nm:g} nm: simulated in {time.perf_counter() - t0:.1f} s")
        if args.profile:
            profile(path, args.profile)
        if args.repeats:
            runs = [steps(path, tmp / f"run{i}") for i in range(args.repeats)]
            out.update(runs=runs, parts_cpu_s=breakdown(path))
            out["best"] = _print_steps(runs, out["parts_cpu_s"])
        for figures in (False, True) if args.figures else (False,):
            if args.fresh:
                label = "phases" if figures else "phases --no-figures"
                out[label] = fresh_runs(path, tmp, n=args.fresh, figures=figures, compare_src=args.compare_src)
                _print_fresh(label, out[label], args.fresh)
        if args.cli:
            out["cli"] = cli_runs(path, tmp, n=args.cli, figures=args.figures, compare_src=args.compare_src)
            _print_cli(out["cli"], args.cli)
    if args.json:
        args.json.write_text(json.dumps({**out, "loadavg": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
