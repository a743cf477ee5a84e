"""Provenance: what went into a result, so that anyone can reproduce it.

Every output directory gets a ``provenance.json`` and every ``summary.json`` and HTML report embeds
the same record: input file SHA-256 (or the SHA-256 of an in-memory array's bytes), the parameters,
the layerscope version, the versions of the key libraries, and the UTC time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable


__all__ = ["Provenance", "file_sha256", "folder_sha256", "array_sha256", "structure_sha256"]

_LIBRARIES = ("numpy", "scipy", "scikit-image", "rosettasciio", "hyperspy", "exspy", "abtem", "ase",
              "pymatgen", "torch", "dask")


def file_sha256(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as a hex string."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_bytes), b""):
            h.update(block)
    return h.hexdigest()


def folder_sha256(path: str | Path) -> str:
    """SHA-256 of a folder's files: of each file's name and SHA-256, in name order (sub-folders not entered)."""
    h = hashlib.sha256()
    for p in sorted(q for q in Path(path).iterdir() if q.is_file()):
        h.update(f"{p.name}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def array_sha256(array: Any) -> str:
    """SHA-256 of an array's shape, dtype and bytes (C order), as a hex string."""
    import numpy as np

    a = np.ascontiguousarray(np.asarray(array))
    h = hashlib.sha256(f"{a.shape}|{a.dtype.str}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def structure_sha256(atoms: Any) -> str:
    """SHA-256 of an ``ase.Atoms``' positions, atomic numbers and cell (the provenance of a structure)."""
    import numpy as np

    return array_sha256(np.concatenate([atoms.get_positions().ravel(), atoms.numbers.astype(float),
                                        atoms.cell.array.ravel()]))


def _version(name: str) -> str | None:
    """The installed version of distribution ``name`` (None if absent); importlib.metadata on first use."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def json_plain(value: Any) -> Any:
    """Parameters as JSON-safe values (paths to str, NumPy scalars/arrays to Python)."""
    if isinstance(value, dict):
        return {str(k): json_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    np = sys.modules.get("numpy")  # a NumPy value exists only once NumPy is imported
    if np is not None and isinstance(value, np.generic):
        return value.item()
    if np is not None and isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"<array {value.shape} {value.dtype}>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_plain(dataclasses.asdict(value))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


@dataclass
class Provenance:
    """Where a result came from.

    Attributes
    ----------
    inputs : list of dict
        One ``{"name", "sha256", "kind"}`` per input (a file path or an in-memory array).
    parameters : dict
        The options the analysis ran with (JSON-safe).
    layerscope_version : str
    created_utc : str
        ISO 8601 time stamp.
    software : dict
        Python and key library versions.
    command : str or None
        The command line that reproduces the run (None when called from Python).
    """

    inputs: list[dict[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    layerscope_version: str = ""
    created_utc: str = ""
    software: dict[str, Any] = field(default_factory=dict)
    command: str | None = None

    @classmethod
    def create(cls, inputs: Iterable[Any] = (), parameters: dict[str, Any] | None = None) -> "Provenance":
        """Record ``inputs`` (paths, containers with a ``source``, or arrays) and ``parameters``."""
        from layerscope._version import __version__
        from layerscope._runstate import COMMAND

        records = [_input_record(obj) for obj in inputs]
        software = {"python": sys.version.split()[0], "platform": platform.platform()}
        software.update({name: v for name in _LIBRARIES if (v := _version(name))})
        return cls(
            inputs=records,
            parameters=json_plain(dict(parameters or {})),
            layerscope_version=__version__,
            created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            software=software,
            command=COMMAND[0],
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary."""
        return dataclasses.asdict(self)

    def merged(self, other: "Provenance") -> "Provenance":
        """One record holding the inputs and parameters of both (used by the report)."""
        seen = {(i["name"], i["sha256"]) for i in self.inputs}
        inputs = self.inputs + [i for i in other.inputs if (i["name"], i["sha256"]) not in seen]
        return dataclasses.replace(self, inputs=inputs, parameters={**self.parameters, **other.parameters})


def _input_record(obj: Any) -> dict[str, Any]:
    from layerscope.containers import Signal

    if isinstance(obj, (str, Path)):
        p = Path(obj)
        if p.is_dir():
            return {"name": str(p), "sha256": folder_sha256(p), "kind": "folder"}
        return {"name": str(p), "sha256": file_sha256(p), "kind": "file"}
    if isinstance(obj, Signal):
        if obj.source is not None and obj.source.is_file():
            return {"name": str(obj.source), "sha256": file_sha256(obj.source), "kind": "file"}
        data = obj.data.compute() if obj.is_lazy else obj.data
        return {"name": obj.title, "sha256": array_sha256(data), "kind": "array"}
    if hasattr(obj, "get_positions"):  # ase.Atoms
        return {"name": obj.get_chemical_formula(), "sha256": structure_sha256(obj), "kind": "structure"}
    return {"name": type(obj).__name__, "sha256": array_sha256(obj), "kind": "array"}
