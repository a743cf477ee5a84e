"""The documentation site builds with warnings as errors, examples executed (what ``make docs`` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           "-d", str(tmp_path / "doctrees"), str(REPO / "docs"), str(out)],
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-5000:]
    for page in ("index.html", "api.html", "conventions.html", "validation.html", "benchmarks.html",
                 "auto_examples/index.html", "auto_examples/plot_columns_phases.html",
                 "api/layerscope.io.output.html"):
        assert (out / page).is_file(), page
    example = (out / "auto_examples" / "plot_columns_phases.html").read_text()
    assert "sphx-glr-single-img" in example or "sphx-glr-multi-img" in example  # the example ran and drew
