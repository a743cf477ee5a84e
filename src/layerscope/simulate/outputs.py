"""Writing a simulation: images (TIFF, HyperSpy), ground-truth columns, summary and preview."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from layerscope.io.output import writes_folder

__all__ = ["write_simulation"]


@writes_folder()
def write_simulation(sim, out_dir: Path, *, summary_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a :class:`~layerscope.simulate.Simulation` into ``out_dir``; returns the summary dict."""
    from layerscope.io.output import write_summary, write_table
    from layerscope.report import figure_to_png, show_image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    p = sim.pixel_size_nm

    def tif(image, path: Path) -> None:
        # float32 TIFF with ImageJ-style scale and units in nm, written (and read back) by RosettaSciIO
        image.with_data(np.asarray(image.data, dtype=np.float32)).to_hyperspy().save(path, overwrite=True)

    tif(sim.image, out_dir / "image.tif")
    sim.image.to_hyperspy().save(out_dir / "image.hspy", overwrite=True)
    if sim.clean is not None:
        tif(sim.clean, out_dir / "clean.tif")
    write_table(sim.columns, out_dir / "columns.csv")
    fig, _ = show_image(np.asarray(sim.image.data), p, title=sim.image.title)
    (out_dir / "preview.png").write_bytes(figure_to_png(fig))
    cols = sim.columns
    summary = {
        "image": {
            "shape": list(sim.image.shape),
            "pixel_size_nm": p,
            "field_nm": list(sim.image.extent_nm),
            "signal_units": sim.image.metadata.get("signal_units"),
            "mean": float(np.mean(sim.image.data)),
            "max": float(np.max(sim.image.data)),
        },
        "simulation": sim.image.metadata.get("simulation"),
        "degradation": sim.image.metadata.get("degradation"),
        "electrons_per_pixel": sim.image.metadata.get("electrons_per_pixel"),
        "columns": {
            "total": int(len(cols)),
            "by_kind": {str(k): int(v) for k, v in cols.groupby("kind").size().items()},
            "by_phase": {str(k): int(v) for k, v in cols.groupby("phase").size().items()},
            "li_sites_with_tm": int(((cols.kind == "Li") & (cols.tm_fraction > 0)).sum()),
        },
        "atoms": {"n": int(len(sim.atoms)), "formula": sim.atoms.get_chemical_formula()} if sim.atoms is not None else None,
        **(summary_extra or {}),
    }
    write_summary(out_dir, summary, sim.provenance)
    return summary
