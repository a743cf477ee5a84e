"""Tests written to kill the surviving mutants of ``layerscope.provenance`` (issue 21, docs/mutation.md).

Each test states the record that provenance must hold against a truth computed independently
(``hashlib`` over the documented bytes, the input itself); all are exact (tolerance 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest

from layerscope import _runstate
from layerscope.containers import Axis, Spectrum
from layerscope.provenance import (Provenance, _input_record, json_plain, array_sha256, file_sha256,
                                   structure_sha256)


def _spectrum(data, source=None, title=None):
    meta = {"title": title} if title else {}
    return Spectrum(data=data, axes=(Axis("energy", len(data), 1.0, 500.0, "eV"),), metadata=meta,
                    source=source)


def test_file_sha256_over_many_chunks_equals_hashlib_of_the_whole_file(tmp_path):
    payload = bytes(range(256)) * 3 + b"tail"          # 772 bytes, read 7 at a time: 111 chunks
    path = tmp_path / "raw.bin"
    path.write_bytes(payload)
    assert file_sha256(path, chunk_bytes=7) == hashlib.sha256(payload).hexdigest()


def test_array_sha256_hashes_shape_dtype_and_c_order_bytes():
    a = np.arange(6, dtype="<i8").reshape(2, 3)
    truth = hashlib.sha256(b"(2, 3)|<i8|" + a.tobytes()).hexdigest()
    assert array_sha256(a) == truth
    assert array_sha256(np.asfortranarray(a)) == truth          # C order whatever the layout
    assert array_sha256(a.reshape(3, 2)) != truth               # same bytes, other shape


def test_structure_sha256_hashes_positions_numbers_and_cell():
    ase = pytest.importorskip("ase")
    atoms = ase.Atoms("LiO", positions=[[0, 0, 0], [1.0, 0.5, 0.25]], cell=[3.0, 4.0, 5.0])
    flat = np.concatenate([atoms.positions.ravel(), [3.0, 8.0], np.diag([3.0, 4.0, 5.0]).ravel()])
    assert structure_sha256(atoms) == array_sha256(flat)
    moved = atoms.copy()
    moved.positions[1, 2] += 1e-3
    assert structure_sha256(moved) != structure_sha256(atoms)


@dataclasses.dataclass(frozen=True)
class _Opts:
    threshold_eV: float = 1.5
    folder: Path = Path("x")


class _Thing:
    def __repr__(self) -> str:
        return "<thing>"


def test_plain_turns_every_kind_of_parameter_into_json_values():
    assert json_plain([Path("a/b"), (1, None)]) == ["a/b", [1, None]]
    f32 = json_plain(np.float32(1.5))
    assert f32 == 1.5 and type(f32) is float                    # a NumPy scalar becomes a Python one
    assert type(json_plain(np.int64(7))) is int
    assert json_plain(np.arange(64.0)) == list(np.arange(64.0))     # up to 64 values: the values
    assert json_plain(np.zeros(65)) == "<array (65,) float64>"      # more: a summary
    assert json_plain(_Opts()) == {"threshold_eV": 1.5, "folder": "x"}
    assert json_plain(_Opts) == repr(_Opts)                         # a dataclass type is not an instance
    assert json_plain(_Thing()) == "<thing>"
    assert json_plain(None) is None and json_plain("s") == "s" and json_plain(True) is True


def test_create_records_python_platform_and_the_command_line():
    before = _runstate.COMMAND[0]
    _runstate.COMMAND[0] = "layerscope eels in.msa --out o"
    try:
        p = Provenance.create(parameters={"k": 1})
    finally:
        _runstate.COMMAND[0] = before
    assert p.software["python"] == platform.python_version()
    assert p.software["platform"] == platform.platform()
    assert p.command == "layerscope eels in.msa --out o"
    assert p.parameters == {"k": 1}


def test_input_record_of_each_kind_of_input(tmp_path):
    raw = tmp_path / "s.msa"
    raw.write_bytes(b"0123456789")
    data = np.arange(10.0)
    on_disk = _input_record(_spectrum(data, source=raw))
    assert on_disk == {"name": str(raw), "sha256": hashlib.sha256(b"0123456789").hexdigest(), "kind": "file"}
    in_memory = _input_record(_spectrum(data, title="sim"))
    assert in_memory == {"name": "sim", "sha256": array_sha256(data), "kind": "array"}
    with dask.config.set(scheduler="synchronous"):   # no worker threads: safe in a forked mutation run
        lazy = _input_record(_spectrum(da.from_array(data, chunks=5), title="lazy"))
    assert lazy == {"name": "lazy", "sha256": array_sha256(data), "kind": "array"}
    plain = _input_record(data)
    assert plain == {"name": "ndarray", "sha256": array_sha256(data), "kind": "array"}


def test_input_record_of_a_structure():
    ase = pytest.importorskip("ase")
    atoms = ase.Atoms("Li2O", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0]], cell=[4, 4, 4])
    assert _input_record(atoms) == {"name": "Li2O", "sha256": structure_sha256(atoms), "kind": "structure"}


def test_merged_keeps_each_input_once_and_the_later_parameters():
    a = Provenance(inputs=[{"name": "x", "sha256": "1", "kind": "file"}], parameters={"p": 1, "q": 1})
    b = Provenance(inputs=[{"name": "x", "sha256": "1", "kind": "file"},
                          {"name": "x", "sha256": "2", "kind": "file"}], parameters={"q": 2})
    m = a.merged(b)
    assert [i["sha256"] for i in m.inputs] == ["1", "2"]
    assert m.parameters == {"p": 1, "q": 2}
    assert a.inputs == [{"name": "x", "sha256": "1", "kind": "file"}]   # the original is unchanged
