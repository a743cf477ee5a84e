"""Benchmark: a 512^3 volume reconstructed and analysed by ``layerscope tomo --out-of-core`` (issue 20).

The object: the 64^3 cracked-particle phantom (``default_phantom(64)``: 4 particles, 4 planar cracks
2-3 voxels wide, 3 round pores, binder and epoxy) tiled 8 x 8 x 8 times into 512^3 voxels, its
attenuation divided by 8 so that a ray through 512 voxels loses what it loses through 64 in the
small phantom. Each distinct z slice is forward projected through ASTRA's strip projector (another
projector than the reconstruction's linear one) over 0-180 deg; every detector row then gets its own
Poisson noise (``--photons`` in the open beam, 100 dark counts) and the series is written as a
DXchange HDF5 file (``exchange/data``, ``data_white``, ``data_dark``, ``theta``) with its pixel size.

Then, in a new process, as a user runs it::

    layerscope tomo proj.h5 --out DIR --out-of-core --no-rings --centre-px 255.5

(``--centre-px``/``--no-rings`` only with ``--given-centre``; by default the centre is searched and
rings removed, the full chain). Reported: wall time, CPU time, the peak resident and anonymous
memory of that process (``VmHWM`` and ``RssAnon`` of /proc, sampled every 0.1 s), the counts against
the truth (512 tiles x 4 particles / 4 cracks / 3 pores) and the crack volume fraction against the
phantom's. Beside it, per slice on the same line integrals: plain ASTRA FBP (CPU, linear projector,
no centre search, no ring removal) and scikit-image ``iradon``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_512.py --scratch /tmp
    # or: write once (--write-only), then run on it (--projections /tmp/tomo512-.../proj.h5)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np

from layerscope.tomo import default_phantom

TILE = 64


def _tile_sinograms(size: int, n_angles: int, projector: str = "strip") -> tuple[np.ndarray, object]:
    """Line integrals (n_angles, 64, size) of the 64 distinct z slices of the tiled phantom, and the phantom.

    ``projector``: ASTRA's CPU ``"strip"`` projector, or ``"cuda"`` (its GPU projector, ~100x faster at 512^2).
    """
    import astra

    ph = default_phantom(TILE, seed=0)
    reps = size // TILE
    angles = np.deg2rad(np.linspace(0.0, 180.0, n_angles, endpoint=False))
    vg = astra.create_vol_geom(size, size)
    pg = astra.create_proj_geom("parallel", 1.0, size, angles)
    pid = astra.create_projector(projector, pg, vg)
    lines = np.empty((n_angles, TILE, size), np.float32)
    try:
        for z in range(TILE):
            sl = np.tile(ph.volume[z].astype(np.float32) / reps, (reps, reps))
            sid, sino = astra.create_sino(np.ascontiguousarray(sl), pid)
            astra.data2d.delete(sid)
            lines[:, z] = sino
    finally:
        astra.projector.delete(pid)
    return lines, ph


def write_projections(path: Path, size: int, n_angles: int, photons: float, pixel_nm: float, seed: int = 1):
    """The DXchange file of the tiled phantom (the truth of one tile: ``default_phantom(64)``)."""
    lines, ph = _tile_sinograms(size, n_angles)
    rng = np.random.default_rng(seed)
    dark = 100.0
    with h5py.File(path, "w") as f:
        data = f.create_dataset("exchange/data", (n_angles, size, size), np.float32, chunks=(n_angles, 8, size))
        for z in range(0, size, 8):
            block = lines[:, np.arange(z, z + 8) % TILE]
            data[:, z:z + 8] = rng.poisson(photons * np.exp(-block)) + dark
        f["exchange/data_white"] = (rng.poisson(np.full((10, size, size), photons)) + dark).astype(np.float32)
        f["exchange/data_dark"] = rng.poisson(np.full((10, size, size), dark)).astype(np.float32)
        th = f.create_dataset("exchange/theta", data=np.linspace(0.0, 180.0, n_angles, endpoint=False))
        th.attrs["units"] = "degrees"
        ps = f.create_dataset("measurement/instrument/detector/pixel_size", data=[pixel_nm])
        ps.attrs["units"] = "nm"


#: the child process: ``layerscope`` with each stage record (:mod:`layerscope.tomo.stages`) appended to a file,
#: ``segment.TIED_TOPS`` set from its second argument ("on"/"off"), and the calls of the tied-tops join (in memory:
#: ``segment.tied_tops_lut``, in slabs: ``chunked._join_tied_tops``; wall and thread CPU seconds) and of
#: ``segment.tie_mask`` (one per labelled mask: count and voxels; ``tomo_percolating._time_ties``) written to
#: ``ties.json`` beside the stage file; BENCH_DIR is replaced by this folder
_CHILD = """import atexit, json, logging, sys
from pathlib import Path
log = Path(sys.argv.pop(1))
import layerscope.tomo.chunked as C, layerscope.tomo.segment as S
S.TIED_TOPS = sys.argv.pop(1) == "on"
sys.path.insert(0, BENCH_DIR)
from tomo_percolating import _time_ties
ties = _time_ties(C, S)
atexit.register(lambda: (log.parent / "ties.json").write_text(json.dumps(ties)))
class Stage(logging.Handler):
    def emit(self, record):
        with log.open("a") as f:
            f.write(record.getMessage().split()[-1] + chr(10))
lg = logging.getLogger("layerscope.tomo.stage")
lg.setLevel(logging.DEBUG)
lg.addHandler(Stage())
lg.propagate = False
sys.argv[0] = "layerscope"
from layerscope.cli import main
main()
"""


def _proc_sample(pid: int) -> tuple[int, int, int, float]:
    """RssAnon, VmRSS and VmHWM (KiB) and user + sys CPU (s) of a process."""
    mem = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("RssAnon", "VmRSS", "VmHWM"):
            mem[key] = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return mem.get("RssAnon", 0), mem.get("VmRSS", 0), mem.get("VmHWM", 0), cpu


def _watch(proc: subprocess.Popen, stage_log: Path) -> tuple[dict, dict]:
    """Peak VmHWM and RssAnon (MiB) of a running process, sampled every 0.1 s, and per stage (the last line
    of ``stage_log``, in the order met): peak RssAnon and VmRSS (MiB), wall and CPU seconds."""
    peak, stages, name, t_in, cpu_in, cpu = {"VmHWM": 0, "RssAnon": 0}, {}, "start", time.perf_counter(), 0.0, 0.0

    def close(stage: str) -> None:
        s = stages.setdefault(stage, {"anon_mib": 0, "rss_mib": 0, "wall_s": 0.0, "cpu_s": 0.0})
        s["wall_s"], s["cpu_s"] = s["wall_s"] + time.perf_counter() - t_in, s["cpu_s"] + cpu - cpu_in

    while proc.poll() is None:
        try:
            anon, rss, hwm, cpu = _proc_sample(proc.pid)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            break
        lines = stage_log.read_text().split() if stage_log.exists() else []
        now = lines[-1] if lines else "start"
        if now != name:  # the stage left ends at this sample
            close(name)
            name, t_in, cpu_in = now, time.perf_counter(), cpu
        s = stages.setdefault(name, {"anon_mib": 0, "rss_mib": 0, "wall_s": 0.0, "cpu_s": 0.0})
        s["anon_mib"], s["rss_mib"] = max(s["anon_mib"], anon // 1024), max(s["rss_mib"], rss // 1024)
        peak["RssAnon"], peak["VmHWM"] = max(peak["RssAnon"], anon // 1024), max(peak["VmHWM"], hwm // 1024)
        time.sleep(0.1)
    close(name)
    return peak, stages


def stage_table(stages: dict, voxels: int) -> str:
    """Per stage: peak anonymous and resident MiB, anonymous bytes per voxel above the start (imports), wall and CPU s."""
    base = stages.get("start", {}).get("anon_mib", 0)
    rows = ["| stage | peak anon MiB | anon B/voxel above start | peak RSS MiB | wall s | CPU s |", "|---|---|---|---|---|---|"]
    for name, s in stages.items():
        rows.append(f"| {name} | {s['anon_mib']} | {(s['anon_mib'] - base) * 2**20 / voxels:.1f} | {s['rss_mib']} | "
                    f"{s['wall_s']:.1f} | {s['cpu_s']:.1f} |")
    return "\n".join(rows)


def run_cli(h5: Path, out: Path, extra: list[str], tied_tops: str = "on") -> tuple[float, float, dict, str, dict]:
    """Run ``layerscope tomo`` in a new process: wall and CPU s, peaks, its last line and the per-stage peaks."""
    stage_log = out.parent / "stages.log"
    stage_log.unlink(missing_ok=True)
    child = _CHILD.replace("BENCH_DIR", repr(str(Path(__file__).parent)))
    cmd = [sys.executable, "-c", child, str(stage_log), tied_tops, "tomo", str(h5), "--out", str(out), "--out-of-core", *extra]
    t0, c0 = time.perf_counter(), os.times()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    drain = []  # read the output while it runs (a full pipe would stall the run)
    reader = threading.Thread(target=lambda: drain.append(proc.stdout.read()), daemon=True)
    reader.start()
    peak, stages = _watch(proc, stage_log)
    proc.wait()
    reader.join()
    text = drain[0] if drain else ""
    c1 = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"layerscope tomo failed ({proc.returncode}): {text[-2000:]}")
    cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    return time.perf_counter() - t0, cpu, peak, text.strip().splitlines()[-1], stages


def _line_integrals_of(h5: Path, n_rows: int) -> np.ndarray:
    """-log of the flat/dark corrected first ``n_rows`` detector rows of a DXchange file."""
    with h5py.File(h5, "r") as f:
        raw = np.asarray(f["exchange/data"][:, :n_rows], np.float32)
        dark = np.asarray(f["exchange/data_dark"][:, :n_rows], np.float32).mean(axis=0)
        flat = np.asarray(f["exchange/data_white"][:, :n_rows], np.float32).mean(axis=0) - dark
    return -np.log(np.clip((raw - dark) / flat, 1e-6, None)).astype(np.float32)


def anchors(lines: np.ndarray, n_slices: int) -> dict:
    """Seconds per 512^2 slice: plain ASTRA FBP (CPU, linear) and scikit-image iradon on the same sinograms."""
    import astra
    from skimage.transform import iradon

    n_angles, _, size = lines.shape
    ang = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    vg = astra.create_vol_geom(size, size)
    pg = astra.create_proj_geom("parallel", 1.0, size, np.deg2rad(ang))
    pid = astra.create_projector("linear", pg, vg)
    t = time.perf_counter()
    for z in range(n_slices):
        sid = astra.data2d.create("-sino", pg, lines[:, z])
        rid = astra.data2d.create("-vol", vg, 0.0)
        cfg = astra.astra_dict("FBP")
        cfg.update(ReconstructionDataId=rid, ProjectionDataId=sid, ProjectorId=pid)
        aid = astra.algorithm.create(cfg)
        astra.algorithm.run(aid)
        astra.algorithm.delete(aid)
        astra.data2d.delete([sid, rid])
    astra_s = (time.perf_counter() - t) / n_slices
    astra.projector.delete(pid)
    t = time.perf_counter()
    for z in range(max(1, n_slices // 4)):
        iradon(lines[:, z].T, theta=ang, filter_name="ramp", circle=False)
    return {"astra_fbp_s_per_slice": astra_s, "iradon_s_per_slice": (time.perf_counter() - t) / max(1, n_slices // 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="edge of the volume (a multiple of 64)")
    ap.add_argument("--angles", type=int, default=800, help="projections over 0-180 deg")
    ap.add_argument("--photons", type=float, default=1e6, help="open-beam counts per detector pixel")
    ap.add_argument("--given-centre", action="store_true", help="pass --centre-px and --no-rings (plain FBP)")
    ap.add_argument("--extend-sinogram", action="store_true", help="pass --extend-sinogram (now the CLI's default, "
                    "--extension mass): the tiles fill the square "
                    "volume, so its corners lie outside the field of view (truncated projections) and plain FBP reads "
                    "a bright rim at the volume's faces (docs/validation.md \"tomocvf5\")")
    ap.add_argument("--no-extend-sinogram", action="store_true", help="pass --no-extend-sinogram: plain FBP (the "
                    "CLI's default before \"tomorings\")")
    ap.add_argument("--anchor-slices", type=int, default=16, help="slices timed for the plain ASTRA / iradon anchors")
    ap.add_argument("--scratch", type=Path, default=None, help="folder for the projection file and the output")
    ap.add_argument("--keep", action="store_true", help="keep the projection file and the output folder")
    ap.add_argument("--projections", type=Path, default=None, help="reuse a file written by an earlier --keep run")
    ap.add_argument("--write-only", action="store_true", help="write the projections (kept) and stop")
    ap.add_argument("--no-anchors", action="store_true", help="skip the plain ASTRA / iradon timings")
    ap.add_argument("--tied-tops", choices=("on", "off"), default="on", help="segment.TIED_TOPS in the child "
                    "(on: the library's default)")
    ap.add_argument("--stages-json", type=Path, default=None, help="write the per-stage peaks and the summary here")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(dir=args.scratch, prefix="tomo512-"))
    h5 = args.projections or tmp / "proj.h5"
    if args.projections is None:
        t = time.perf_counter()
        write_projections(h5, args.size, args.angles, args.photons, pixel_nm=50.0)
        print(f"{args.size}^3 phantom: {args.angles} projections written to {h5} in {time.perf_counter() - t:.0f} s "
              f"({h5.stat().st_size / 2**20:.0f} MiB)", flush=True)
        if args.write_only:
            return
    ph = default_phantom(TILE, seed=0)
    with h5py.File(h5, "r") as f:
        args.size, args.angles = f["exchange/data"].shape[2], f["exchange/data"].shape[0]
    extra = ["--centre-px", f"{(args.size - 1) / 2:.1f}", "--no-rings"] if args.given_centre else []
    extra += ["--extend-sinogram"] if args.extend_sinogram else []
    extra += ["--no-extend-sinogram"] if args.no_extend_sinogram else []
    wall, cpu, peak, last, stages = run_cli(h5, tmp / "out", extra, args.tied_tops)
    ties = json.loads((tmp / "stages.log").with_name("ties.json").read_text())
    s = json.loads((tmp / "out" / "summary.json").read_text())
    tiles = (args.size // TILE) ** 3
    truth = {"n_particles": len(ph.truth), "n_cracks": int(ph.truth["crack_count"].sum()),
             "n_pores": int(ph.truth["pore_count"].sum())}
    cvf = float(ph.crack_truth["volume_voxels"].sum() / ph.truth["volume_voxels"].sum())
    print(f"layerscope tomo --out-of-core {' '.join(extra)}: wall {wall:.0f} s, CPU {cpu:.0f} s, peak RSS "
          f"{peak['VmHWM']} MiB, peak anonymous {peak['RssAnon']} MiB, load {os.getloadavg()[0]:.1f}")
    print(f"  {last}")
    for key, n in truth.items():
        print(f"  {key}: {s[key]} (truth {tiles} x {n} = {tiles * n})")
    print(f"  crack volume fraction {s['crack_volume_fraction']:.5f} (phantom truth {cvf:.5f})")
    print(f"  centre {s['reconstruction']['centre_px']:.2f} px (truth {(args.size - 1) / 2:.1f})")
    print(f"  tied tops {args.tied_tops}: {ties['calls']} joins, {ties['wall_s']:.2f} s wall "
          f"({ties['thread_cpu_s']:.2f} s thread CPU), {ties['masks']} tie masks labelled "
          f"({ties['mask_voxels'] / args.size ** 3:.2f} x the volume)")
    print(f"per stage ({args.size}^3 = {args.size ** 3} voxels; B/voxel: peak RssAnon above the 'start' stage's):")
    print(stage_table(stages, args.size ** 3))
    if args.stages_json:
        args.stages_json.write_text(json.dumps({"size": args.size, "angles": args.angles, "wall_s": wall, "cpu_s": cpu,
                                                "peak": peak, "stages": stages, "summary": s,
                                                "tied_tops": args.tied_tops, "ties": ties}, indent=1, default=str))
    if args.no_anchors:
        return _clean(args, tmp, h5)
    a = anchors(_line_integrals_of(h5, args.anchor_slices), args.anchor_slices)
    print(f"per {args.size}^2 slice, {args.angles} angles: plain ASTRA FBP {a['astra_fbp_s_per_slice']:.2f} s "
          f"(x {args.size} = {a['astra_fbp_s_per_slice'] * args.size:.0f} s on one core), iradon "
          f"{a['iradon_s_per_slice']:.2f} s (x {args.size} = {a['iradon_s_per_slice'] * args.size:.0f} s)")
    _clean(args, tmp, h5)


def _clean(args, tmp: Path, h5: Path) -> None:
    if not args.keep:
        import shutil

        shutil.rmtree(tmp)
        if args.projections is None:
            h5.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
