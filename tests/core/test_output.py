"""Outputs are all-or-nothing and carry provenance."""

import json

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope.io.output import output_directory, write_json, write_summary, write_table
from layerscope.provenance import Provenance, array_sha256, file_sha256


def test_file_hash_matches_hashlib(tmp_path):
    import hashlib

    f = tmp_path / "x.bin"
    payload = bytes(range(256)) * 5000
    f.write_bytes(payload)
    assert file_sha256(f, chunk_bytes=1000) == hashlib.sha256(payload).hexdigest()


def test_array_hash_depends_on_values_shape_and_dtype():
    a = np.arange(12.0).reshape(3, 4)
    assert array_sha256(a) == array_sha256(a.copy())
    assert array_sha256(a) != array_sha256(a.reshape(4, 3))
    assert array_sha256(a) != array_sha256(a.astype("float32"))
    b = a.copy()
    b[2, 3] += 1e-12
    assert array_sha256(a) != array_sha256(b)


def test_provenance_records_inputs_parameters_and_version(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("1 2\n")
    p = Provenance.create(inputs=[f, np.zeros(3)], parameters={"pixel_size_nm": np.float64(0.01), "out": tmp_path})
    d = p.to_dict()
    assert d["inputs"][0] == {"name": str(f), "sha256": file_sha256(f), "kind": "file"}
    assert d["inputs"][1]["kind"] == "array"
    assert d["parameters"] == {"pixel_size_nm": 0.01, "out": str(tmp_path)}
    assert d["layerscope_version"] == layerscope.__version__
    assert "numpy" in d["software"] and d["created_utc"].endswith("+00:00")


def test_output_directory_appears_only_on_success(tmp_path):
    out = tmp_path / "result"
    with pytest.raises(RuntimeError):
        with output_directory(out) as tmp:
            write_table(pd.DataFrame({"a": [1]}), tmp / "t.csv")
            raise RuntimeError("analysis failed half way")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind
    with output_directory(out) as tmp:
        write_table(pd.DataFrame({"x_nm": [0.1, 0.2]}), tmp / "t.csv")
        write_table(pd.DataFrame({"x_nm": [0.1, 0.2]}), tmp / "t.parquet")
        write_summary(tmp, {"n": 2, "bad": float("nan")}, Provenance.create(parameters={"k": 1}))
    assert sorted(p.name for p in out.iterdir()) == ["provenance.json", "summary.json", "t.csv", "t.parquet"]
    manifest = json.loads((out / "provenance.json").read_text())["outputs"]
    assert manifest["tool"] == "layerscope"
    assert manifest["files"] == ["provenance.json", "summary.json", "t.csv", "t.parquet"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 2 and summary["bad"] is None
    assert summary["provenance"]["parameters"] == {"k": 1}
    pd.testing.assert_frame_equal(pd.read_parquet(out / "t.parquet"), pd.read_csv(out / "t.csv"))
    # a second successful run with overwrite replaces the files the first run wrote, and only those
    (out / "notes.txt").write_text("mine")
    with output_directory(out, overwrite=True) as tmp:
        write_json({"n": 3}, tmp / "summary.json")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "provenance.json", "summary.json"]
    assert (out / "notes.txt").read_text() == "mine"


def test_write_table_refuses_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=".csv or .parquet"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_ordinary_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        with output_directory(tmp_path / "res") as tmp:
            write_json({"a": 1}, tmp / "s.json")
    finally:
        os.umask(mask)
    assert oct((tmp_path / "res").stat().st_mode & 0o777) == oct(0o755)
    assert oct((tmp_path / "res" / "s.json").stat().st_mode & 0o777) == oct(0o644)
