"""The demo: a degraded NMC811 cathode simulated with known truth, every analysis run on it.

Each domain contributes ``demo_section(workdir, *, seed)`` returning a report
:class:`~layerscope.report.Section`; this module runs them in order, each in its own sub-folder of
the output, and writes one self-contained ``report.html``.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from layerscope.io.output import output_directory, write_json
from layerscope.provenance import Provenance
from layerscope.report import Section, render_report

__all__ = ["run_demo", "DEMO_STEPS"]

#: (sub-folder, module with ``demo_section``) in report order
DEMO_STEPS: tuple[tuple[str, str], ...] = (
    ("simulation", "layerscope.simulate.demo"),
    ("phases", "layerscope.imaging.demo"),
    ("eels", "layerscope.spectra.demo"),
    ("insitu", "layerscope.insitu.demo"),
    ("atomistic", "layerscope.atomistic.demo"),
    ("cycling", "layerscope.cells.demo"),
    ("xrd", "layerscope.diffraction.demo"),
    ("tomo", "layerscope.tomo.demo"),
    ("bulk", "layerscope.bulk.demo"),
)


def _overview(sections: list[Section], *, per_section: int = 3) -> Section:
    text = (
        "This report was made by 'layerscope demo'. Everything in it is computed from data simulated with "
        "known ground truth (a degraded LiNi0.8Mn0.1Co0.1O2 cathode: O3 matrix, an O1 domain, a twin layer, a "
        "rock-salt surface layer, Li/TM mixing and a void) or from public reference files, so every number can "
        "be held against the truth it came from.\n\n"
        "Conventions: lengths in nm (precision in pm), energies in eV, times in s; images are indexed "
        "[row, col], x runs to the right and y down from the top-left corner of the first pixel."
    )
    headline = {f"{s.title}: {k}": v for s in sections for k, v in s.headline_metrics(per_section).items()}
    return Section("Overview", text, metrics=headline)


def run_demo(out: str | Path, *, seed: int = 0, scheduler: Any = None, steps=None, overwrite: bool = False) -> Path:
    """Run every demo step and write ``out/report.html``; returns the report's path.

    The output folder appears only when every step succeeded (see
    :func:`layerscope.io.output.output_directory`).
    """
    steps = DEMO_STEPS if steps is None else steps
    parameters = {"seed": seed, "steps": [m for _, m in steps]}
    sections: list[Section] = []
    timings: dict[str, float] = {}
    with output_directory(out, overwrite=overwrite) as tmp:
        bar = tqdm(steps, desc="demo", unit="step", disable=not sys.stderr.isatty(), leave=False)
        for folder, module in bar:
            bar.set_description(f"demo: {folder}")
            workdir = tmp / folder
            workdir.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            section = importlib.import_module(module).demo_section(workdir, seed=seed)
            timings[section.title] = time.perf_counter() - start
            sections.append(section)
        provenance = Provenance.create(parameters=parameters)
        for s in sections:
            if s.provenance is not None:
                provenance = provenance.merged(s.provenance)
        write_json(provenance.to_dict(), tmp / "provenance.json")
        render_report([_overview(sections), *sections], tmp / "report.html",
                      title="layerscope demo: a degraded NMC811 cathode", provenance=provenance, timings_s=timings)
    return Path(out) / "report.html"
