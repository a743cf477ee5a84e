"""The lean core: commands run without the heavy extras, and a missing extra is one line naming it.

Each case runs the real console entry in a subprocess in which torch, chgnet, sevenn and abtem
cannot be imported (as after ``pip install layerscope`` without extras).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCKED = ("torch", "chgnet", "sevenn", "abtem")

_RUNNER = textwrap.dedent("""
    import sys

    class Uninstalled:  # finds the blocked packages nowhere, as when they are not installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Uninstalled())
    sys.argv = ["layerscope", *sys.argv[1:]]
    from layerscope.cli import main
    main()
""").format(blocked=BLOCKED)


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", _RUNNER, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    done = subprocess.run([sys.executable, "-m", "layerscope", "simulate", "--out", str(d / "sim"), "--width-nm", "3",
                           "--height-nm", "3", "--dose", "5000"], capture_output=True, text=True)  # needs the 'sim' extra
    assert done.returncode == 0, done.stderr
    return d / "sim" / "image.tif"


def _ok(done):
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for name in BLOCKED:
        assert name not in done.stderr


def test_help_and_info_without_the_extras(shared_data):
    _ok(_run("--help"))
    done = _run("info", shared_data / "eels" / "pytemlib" / "EELS_STO.dm3")
    _ok(done)
    assert "0.25 eV" in done.stdout


def test_columns_eels_cycling_xrd_without_the_heavy_extras(shared_data, image, tmp_path):
    _ok(_run("columns", image, "--out", tmp_path / "c", "--no-figures"))
    assert (tmp_path / "c" / "columns.csv").is_file()
    _ok(_run("eels", shared_data / "eels" / "exspy" / "coreloss_spectrum.msa", "--edges", "Mn_L",
             "--out", tmp_path / "e"))
    _ok(_run("cycling", shared_data / "cycling" / "neware" / "TestFile.nda", "--out", tmp_path / "y"))
    _ok(_run("xrd", shared_data / "xrd" / "Nb2O5_CuO_LiCoO2.12-min.xrdml", "--out", tmp_path / "x"))


@pytest.mark.parametrize("args, extra", [
    (["atomistic", "vacancies"], "atomistic"),
    (["columns", "{image}", "--enhance"], "enhance"),
    (["simulate"], "sim"),
])
def test_a_missing_extra_is_one_line(args, extra, image, tmp_path):
    out = tmp_path / "out"
    done = _run(*[a.replace("{image}", str(image)) for a in args], "--out", out)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"needs the '{extra}' extra" in lines[0] and f"pip install 'layerscope[{extra}]'" in lines[0]
    assert not out.exists()
