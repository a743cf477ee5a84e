"""The command line: readable help, info on real files, one-line errors with exit status 2."""

import subprocess
import sys

import pytest

from typer.testing import CliRunner

from layerscope.cli import app

runner = CliRunner()


def _run(*args):
    return subprocess.run([sys.executable, "-m", "layerscope", *map(str, args)], capture_output=True, text=True)


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("info", "demo", "version"):
        assert command in result.output


def test_info_prints_calibration_of_a_real_file(shared_data):
    result = runner.invoke(app, ["info", str(shared_data / "eels/pytemlib/EELS_STO.dm3")])
    assert result.exit_code == 0, result.output
    assert "spectrum (2048,)" in result.output
    assert "0.25 eV" in result.output and "offset 350" in result.output


def test_user_errors_are_one_line_with_status_2(tmp_path):
    missing = _run("info", tmp_path / "nope.dm4")
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0
    assert missing.stderr.startswith("layerscope: error:") and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    text = tmp_path / "counts.txt"
    text.write_text("1\n2\n3\n")
    no_axis = _run("info", text)
    assert no_axis.returncode == 2 and "--offset-ev" in no_axis.stderr and "offset_eV=" not in no_axis.stderr
    ok = _run("info", text, "--offset-ev", "100", "--scale-ev", "0.5")
    assert ok.returncode == 0 and "0.5 eV" in ok.stdout


def test_version_and_quiet_terminal(shared_data, tmp_path):
    import layerscope

    version = _run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"layerscope {layerscope.__version__}"
    # an EMSA file through info and eels: no third-party warning or log line reaches the terminal
    msa = shared_data / "eels" / "exspy" / "coreloss_spectrum.msa"
    info = _run("info", msa)
    assert info.returncode == 0 and info.stderr == "", info.stderr
    eels = _run("eels", msa, "--edges", "Mn_L", "--out", tmp_path / "e")
    assert eels.returncode == 0 and eels.stderr == "", eels.stderr
    loud = _run("info", msa, "--verbose")
    assert loud.returncode == 0


def test_command_imports_freeze_only_in_a_one_command_process(monkeypatch):
    """The speed4 start-up: imports without the cyclic collector, then frozen -- only where the process
    runs one command; the collector is on again afterwards, and in-process runs (tests) are left alone."""
    import gc
    import importlib

    app_module = importlib.import_module("layerscope.cli.app")  # `layerscope.cli.app` the attribute is the Typer app
    from layerscope.cli import main

    monkeypatch.setattr(sys, "argv", ["layerscope", "--version"])
    with pytest.raises(SystemExit):
        main()
    assert not app_module._ONE_COMMAND_PROCESS  # main() in this process: unmarked again once it returns
    frozen = gc.get_freeze_count()
    with app_module.command_imports():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen  # run() in this process: nothing frozen
    monkeypatch.setattr(app_module, "_ONE_COMMAND_PROCESS", True)
    try:
        with app_module.command_imports():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]  # tracked objects created "by the imports"
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(made)
    finally:
        gc.unfreeze()
        gc.enable()
