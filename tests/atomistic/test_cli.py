"""``layerscope atomistic vacancies|neb``: options are checked before any expensive work."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import layerscope.cli.atomistic  # noqa: F401  (registers the sub-command)
from layerscope.cli.app import app
from layerscope.errors import InputError

runner = CliRunner()


def test_help_lists_both_commands():
    result = runner.invoke(app, ["atomistic", "--help"])
    assert result.exit_code == 0
    assert "vacancies" in result.output and "neb" in result.output


@pytest.mark.parametrize("args, message", [
    (["vacancies", "--structure", "grain"], "choose bulk, twin or tilt"),
    (["vacancies", "--potential", "mace-mp-0"], "unknown potential"),
    (["vacancies", "--size", "2,2"], "3 comma-separated"),
    (["neb", "--direction", "110"], "use 100 and/or 120"),
    (["neb", "--gliding", "a,b"], "comma-separated numbers"),
    (["neb", "--relax-radius-a", "-1"], "distance in Å"),
])
def test_bad_options_are_input_errors(tmp_path, args, message):
    result = runner.invoke(app, ["atomistic", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "out").exists()  # nothing half-written
