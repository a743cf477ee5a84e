"""What the layer fringe's harmonics (``lattice.LAYER_HARMONICS``) cost in ``fft_lattice`` (issue 19, session 32).

``fft_lattice`` on a spectrum already computed (as ``phases`` passes it), first-order spot alone against orders 1-4,
median of repeated calls: random draw 4135 (483²) and the 2048² image of ``benchmarks/imaging_speed.py``::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src:$PWD/benchmarks .venv/bin/python benchmarks/layer_harmonics_cost.py
"""

from __future__ import annotations

import time

import numpy as np


def _median_ms(image: np.ndarray, px: float, sp, mode, repeats: int) -> float:
    from layerscope.imaging import lattice

    spectrum = lattice.power_spectrum(image, pixel_size_nm=px)
    lattice.LAYER_HARMONICS = mode
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        lattice.fft_lattice(image, pixel_size_nm=px, layer_spacing_nm=sp.tm_spacing_nm,
                            inplane_spacing_nm=sp.inplane_spacing_nm, spectrum=spectrum)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    from imaging_speed import PX, make_image

    from layerscope.imaging.materials import material_spacings
    from layerscope.simulate.draws import draw_scene

    sp = material_spacings("LiCoO2", "100")
    draw, px, _ = draw_scene(4135)
    for name, image, pixel, repeats in (("draw 4135, 483^2", draw, px, 30), ("2048^2", make_image(), PX, 10)):
        first, harm = (_median_ms(image, pixel, sp, mode, repeats) for mode in (None, 4))
        print(f"{name}: fft_lattice first order {first:.2f} ms, harmonics {harm:.2f} ms (ratio {harm / first:.2f})")


if __name__ == "__main__":
    main()
