"""The built wheel carries the enhancer weights and the report template, and runs the demo from a fresh venv.

The fresh venv gets layerscope from the wheel alone (no source tree on the path); its third-party
dependencies are borrowed from the test environment's site-packages through a ``.pth`` line, so
nothing is downloaded.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contents_and_demo_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True)
    wheel = next(dist.glob("layerscope-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("layerscope/imaging/weights/enhancer.pt", "layerscope/imaging/weights/enhancer.json",
                   "layerscope/report/templates/report.html.j2"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith("tests/")]

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    zipfile.ZipFile(wheel).extractall(site)  # a wheel is a zip of the site-packages tree
    where = subprocess.run([str(py), "-c", "import layerscope; print(layerscope.__file__)"], capture_output=True,
                           text=True, cwd=tmp_path, check=True).stdout
    assert where.startswith(str(site)), where
    out = tmp_path / "demo"
    done = subprocess.run([str(py), "-m", "layerscope", "demo", "--out", str(out)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr
    assert (out / "report.html").stat().st_size > 100_000
