"""Tests written to kill the surviving mutants of ``layerscope.io.output`` (issue 21, docs/mutation.md).

Fast unit tests of the output contract (docs/conventions.md, "Outputs"): each asserts the exact
message, file list, file content or permission bits that the contract promises (tolerance 0).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layerscope import _runstate
from layerscope._version import __version__
from layerscope.errors import InputError
from layerscope.io import output as output_module
from layerscope.io.output import (PARTIAL_MARKER, OutputError, OutputTarget, _finite, _json_default, _pid_alive,
                                  _write_error, atomic_file, check_replaceable, output_directory, read_manifest,
                                  write_json, write_summary, write_table, writes_folder)
from layerscope.provenance import Provenance

FIX = "choose a new folder with --out"


def _result(folder: Path, files: dict[str, str]) -> None:
    """A previous layerscope result in ``folder`` that wrote ``files`` (name -> text)."""
    with output_directory(folder, overwrite=folder.exists()) as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)


def _message(excinfo) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize("where, why", [("cwd", "is the current folder"), ("home", "is your home folder"),
                                        ("/usr", "is a system folder")])
def test_forbidden_folders_are_refused_with_the_reason(where, why, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    (tmp_path / "h").mkdir()
    path = {"cwd": tmp_path, "home": tmp_path / "h", "/usr": Path("/usr")}[where]
    with pytest.raises(InputError) as e:
        OutputTarget(path)
    assert _message(e) == (f"output folder '{path.resolve()}' {why}; layerscope writes only into its own "
                           f"folder: {FIX}")


def test_a_folder_holding_an_input_is_refused_and_a_sibling_input_is_not(tmp_path):
    out = tmp_path / "out"
    for inp in (out / "in.dm4", out):
        with pytest.raises(InputError) as e:
            OutputTarget(out, inputs=[inp])
        assert _message(e) == f"output folder '{out}' contains the input '{inp}'; {FIX}"
    target = OutputTarget(out, inputs=[tmp_path / "in.dm4", str(tmp_path / "other.msa")])
    assert target.inputs == [tmp_path / "in.dm4", tmp_path / "other.msa"]
    assert _runstate.TARGETS[-1] == out                  # the claimed folder is named on Ctrl-C


def test_previous_and_foreign_folders_get_their_own_messages(tmp_path):
    old = tmp_path / "old"
    _result(old, {"a.csv": "x"})
    with pytest.raises(InputError) as e:
        OutputTarget(old)                                 # overwrite is off by default
    assert _message(e) == (f"output folder '{old}' holds a previous layerscope result; give --overwrite to "
                           "replace it (only the files it wrote), or choose a new folder with --out")
    assert OutputTarget(old, overwrite=True).previous["files"] == ["a.csv", "provenance.json"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("x")
    with pytest.raises(InputError) as e:
        OutputTarget(foreign, overwrite=True)
    assert _message(e) == (f"output folder '{foreign}' already holds files that layerscope did not write; {FIX} "
                           "(layerscope never deletes files it did not write)")
    assert OutputTarget(tmp_path / "new").previous is None


def test_a_name_too_long_is_an_output_error_naming_the_folder(tmp_path):
    out = tmp_path / ("x" * 300)
    with pytest.raises(OutputError) as e:
        OutputTarget(out)
    assert _message(e) == f"cannot write to {out}: File name too long; choose another --out"


def test_manifest_lists_every_file_and_keeps_what_provenance_json_held(tmp_path):
    before = _runstate.COMMAND[0]
    _runstate.COMMAND[0] = "layerscope x --out o"
    try:
        with output_directory(tmp_path / "a") as tmp:      # no provenance.json written by the run
            (tmp / "sub").mkdir()
            (tmp / "sub" / "t.csv").write_text("1")
        with output_directory(tmp_path / "b") as tmp:
            (tmp / "provenance.json").write_text(json.dumps({"inputs": [1]}))
        with output_directory(tmp_path / "c") as tmp:
            (tmp / "provenance.json").write_text(json.dumps([1, 2]))
        with output_directory(tmp_path / "d") as tmp:
            (tmp / "provenance.json").write_text("{not json")
    finally:
        _runstate.COMMAND[0] = before
    a = json.loads((tmp_path / "a" / "provenance.json").read_text())
    assert a == {"outputs": {"tool": "layerscope", "version": __version__, "command": "layerscope x --out o",
                             "folder": str(tmp_path / "a"), "files": ["provenance.json", "sub/t.csv"]}}
    assert (tmp_path / "a" / "provenance.json").read_text().startswith('{\n  "outputs": {\n    "tool"')
    d = json.loads((tmp_path / "d" / "provenance.json").read_text())
    assert list(d) == ["outputs"]                                  # unreadable provenance: the manifest only
    b = json.loads((tmp_path / "b" / "provenance.json").read_text())
    assert b["inputs"] == [1] and b["outputs"]["files"] == ["provenance.json"]
    c = json.loads((tmp_path / "c" / "provenance.json").read_text())
    assert c["provenance"] == [1, 2] and c["outputs"]["folder"] == str(tmp_path / "c")


def test_an_empty_existing_folder_is_used_and_files_arriving_during_the_run_stop_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with output_directory(out) as tmp:
        (tmp / "r.txt").write_text("1")
    assert sorted(p.name for p in out.iterdir()) == ["provenance.json", "r.txt"]
    late = tmp_path / "late"
    late.mkdir()
    with pytest.raises(InputError) as e:
        with output_directory(late) as tmp:
            (tmp / "r.txt").write_text("1")
            (late / "theirs.txt").write_text("x")
    assert _message(e) == (f"output folder '{late}' received files from elsewhere during the run; "
                           "nothing was written: choose a new folder with --out")
    assert sorted(p.name for p in late.iterdir()) == ["theirs.txt"]


def test_overwrite_refuses_to_replace_a_foreign_file_or_folder_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    _result(out, {"summary.json": "{}"})
    (out / "notes.csv").write_text("theirs")
    with pytest.raises(InputError) as e:
        with output_directory(out, overwrite=True) as tmp:
            (tmp / "notes.csv").write_text("ours")
    assert _message(e) == (f"writing 'notes.csv' would replace '{out / 'notes.csv'}', which layerscope did not "
                           "write; nothing was written: choose a new folder with --out")
    assert (out / "notes.csv").read_text() == "theirs"
    (out / "notes.csv").unlink()
    (out / "figs").write_text("a file where the run puts a folder")
    with pytest.raises(InputError) as e:
        with output_directory(out, overwrite=True) as tmp:
            (tmp / "figs").mkdir()
            (tmp / "figs" / "f.png").write_text("png")
    assert _message(e) == f"'{out / 'figs'}' is not layerscope's; nothing was written: choose a new --out"
    assert (out / "figs").read_text() == "a file where the run puts a folder"


def test_overwrite_creates_nested_folders_and_prunes_the_emptied_ones(tmp_path):
    out = tmp_path / "out"
    _result(out, {"old/deep/f.png": "1", "keep.csv": "1"})
    _result(out, {"new/a/b.csv": "2", "keep.csv": "2"})
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert files == ["keep.csv", "new", "new/a", "new/a/b.csv", "provenance.json"]


def test_text_outputs_name_the_final_folder_and_other_files_stay_byte_for_byte(tmp_path):
    out = tmp_path / "out"
    with output_directory(out) as tmp:
        where = str(tmp / "t.csv")
        (tmp / "s.json").write_text(json.dumps({"table": where}))
        (tmp / "odd.txt").write_bytes(b"\xff\xfe " + where.encode())   # not valid UTF-8
        (tmp / "raw.bin").write_bytes(where.encode())
        (tmp / "figures.md").mkdir()                                     # a folder with a text suffix
    assert json.loads((out / "s.json").read_text()) == {"table": str(out / "t.csv")}
    assert (out / "odd.txt").read_bytes() == b"\xff\xfe " + str(out / "t.csv").encode()
    assert (out / "raw.bin").read_bytes() == where.encode()


def test_the_temporary_folder_is_marked_and_has_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        with output_directory(tmp_path / "out") as tmp:
            marker = json.loads((tmp / PARTIAL_MARKER).read_text())
            mode = stat.S_IMODE(tmp.stat().st_mode)
    finally:
        os.umask(mask)
    assert marker == {"tool": "layerscope", "pid": os.getpid(), "host": socket.gethostname()}
    assert mode == 0o755


def _partial(parent: Path, name: str, marker) -> Path:
    p = parent / f".out.partial-{name}"
    p.mkdir()
    if marker is not None:
        (p / PARTIAL_MARKER).write_text(marker if isinstance(marker, str) else json.dumps(marker))
    return p


def test_only_stale_partials_of_dead_layerscope_runs_on_this_host_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    host = socket.gethostname()
    kept = [_partial(tmp_path, f"none{i}", None) for i in range(8)]            # unmarked: not provably ours
    kept += [_partial(tmp_path, "alive", {"tool": "layerscope", "pid": os.getpid(), "host": host}),
             _partial(tmp_path, "otherhost", {"tool": "layerscope", "pid": pid, "host": host + "-x"}),
             _partial(tmp_path, "othertool", {"tool": "other", "pid": pid, "host": host}),
             _partial(tmp_path, "strpid", {"tool": "layerscope", "pid": str(pid), "host": host}),
             _partial(tmp_path, "list", [1]), _partial(tmp_path, "garbled", "{")]
    stale = _partial(tmp_path, "stale", {"tool": "layerscope", "pid": pid, "host": host})
    with output_directory(tmp_path / "out") as tmp:
        (tmp / "r.txt").write_text("1")
    assert not stale.exists()
    assert all(p.exists() for p in kept)


def test_files_outside_a_command_folder_are_replaced_only_with_overwrite(tmp_path):
    f = tmp_path / "t.json"
    write_json({"a": 1}, f)
    with pytest.raises(InputError) as e:
        write_json({"a": 2}, f)
    assert _message(e) == (f"'{f}' exists; layerscope does not replace files it may not have written: "
                           "choose another file name (or pass overwrite=True)")
    write_json({"a": 3}, f, overwrite=True)
    assert json.loads(f.read_text()) == {"a": 3}
    t = tmp_path / "t.csv"
    write_table(pd.DataFrame({"a": [1]}), t)
    with pytest.raises(InputError):
        write_table(pd.DataFrame({"a": [2]}), t)
    write_table(pd.DataFrame({"a": [3]}), t, overwrite=True)
    assert pd.read_csv(t)["a"].tolist() == [3]
    with output_directory(tmp_path / "out") as tmp:
        write_json({"a": 1}, tmp / "s.json")
        write_json({"a": 2}, tmp / "s.json")                  # inside the command's folder: its own file
        with pytest.raises(InputError):
            write_json({"a": 4}, f)                           # but not a file elsewhere
        with atomic_file(tmp_path / "new.txt") as p:
            p.write_text("n")
    assert json.loads((tmp_path / "out" / "s.json").read_text()) == {"a": 2}
    assert json.loads(f.read_text()) == {"a": 3}


def test_tables_are_written_without_their_index(tmp_path):
    table = pd.DataFrame({"x_nm": [0.5, 1.5]}, index=[10, 11])
    write_table(table, tmp_path / "t.csv")
    write_table(table, tmp_path / "t.parquet")
    assert (tmp_path / "t.csv").read_text() == "x_nm\n0.5\n1.5\n"
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert list(back.columns) == ["x_nm"] and back.index.tolist() == [0, 1]


def test_json_is_two_space_indented_with_nan_as_null(tmp_path):
    write_json({"a": [1.0, float("nan")], "b": np.float32(np.inf)}, tmp_path / "s.json")
    assert (tmp_path / "s.json").read_text() == '{\n  "a": [\n    1.0,\n    null\n  ],\n  "b": null\n}\n'


def test_finite_replaces_non_finite_numpy_scalars_and_leaves_arrays():
    arr = np.array([1.0])
    out = _finite({"a": [np.float32("nan"), np.float32(1.5), np.array(np.inf), np.array(2.0)], "b": arr})
    assert out["a"] == [None, 1.5, None, 2.0] and type(out["a"][1]) is float
    assert out["b"] is arr                                       # arrays of one or more dimensions stay


def test_read_manifest_accepts_only_layerscope_manifests(tmp_path):
    cases = {"list": [1], "tool": {"outputs": {"tool": "other", "files": []}},
             "files": {"outputs": {"tool": "layerscope", "files": "a.csv"}},
             "notdict": {"outputs": ["layerscope"]}}
    for name, data in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "provenance.json").write_text(json.dumps(data))
        assert read_manifest(tmp_path / name) is None, name


def test_write_summary_writes_provenance_json_too(tmp_path):
    prov = Provenance.create(parameters={"k": 2})
    write_summary(tmp_path / "out", {"n": 1}, prov)
    written = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert {k: v for k, v in written.items() if k != "outputs"} == prov.to_dict()


def test_a_file_in_place_of_the_folder_is_refused(tmp_path):
    f = tmp_path / "out"
    f.write_text("x")
    with pytest.raises(InputError) as e:
        OutputTarget(f)
    assert _message(e) == f"output path '{f}' exists and is a file; {FIX}"


def test_write_errors_name_the_folder_and_the_reason():
    assert str(_write_error(Path("/x/out"), OSError(28, "No space left on device"))) == \
        "cannot write to /x/out: No space left on device; choose another --out"
    assert str(_write_error(Path("/x/out"), OSError("odd failure"))) == \
        "cannot write to /x/out: odd failure; choose another --out"


def test_check_replaceable_refuses_an_existing_file_unless_told(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    with pytest.raises(InputError):
        check_replaceable(f)
    check_replaceable(f, overwrite=True)
    check_replaceable(tmp_path / "new.txt")


def test_pid_alive_only_probes_with_signal_zero(monkeypatch):
    calls = []

    def kill(pid, sig):
        calls.append((pid, sig))
        if pid == 2:
            raise ProcessLookupError
        if pid == 3:
            raise PermissionError                      # another user's process: alive

    monkeypatch.setattr(output_module.os, "kill", kill)
    assert [_pid_alive(1), _pid_alive(2), _pid_alive(3)] == [True, False, True]
    assert calls == [(1, 0), (2, 0), (3, 0)]


def test_writes_folder_maps_returned_paths_to_the_final_folder(tmp_path):
    @writes_folder("folder")
    def writer(table, folder):
        (folder / "sub").mkdir()
        (folder / "sub" / "t.csv").write_text(table)
        return {"table": folder / "sub" / "t.csv", "all": [folder, (folder / "x",)], "n": 1, "other": tmp_path}

    out = tmp_path / "out"
    got = writer("a\n1\n", out)
    assert got == {"table": out / "sub" / "t.csv", "all": [out, (out / "x",)], "n": 1, "other": tmp_path}
    assert (out / "sub" / "t.csv").read_text() == "a\n1\n"
    with pytest.raises(InputError):
        writer("b", out)                                    # a previous result: overwrite is needed
    writer("b\n", out, overwrite=True)
    assert (out / "sub" / "t.csv").read_text() == "b\n"


def test_json_default_converts_what_plain_converts_and_refuses_the_rest():
    assert _json_default(np.float32(1.5)) == 1.5 and _json_default(Path("a/b")) == "a/b"
    with pytest.raises(TypeError, match="not JSON serialisable: int"):
        _json_default(5)


def test_writes_folder_follows_the_out_dir_parameter_by_default(tmp_path):
    @writes_folder()
    def write(value, out_dir):
        (out_dir / "v.txt").write_text(value)
        return out_dir / "v.txt"

    assert write("7", tmp_path / "r") == tmp_path / "r" / "v.txt"
    assert (tmp_path / "r" / "v.txt").read_text() == "7"
