"""Ground truth of a STEM image: the projected atom columns of a structure.

A *column* is the set of atoms that sit on one line along the beam (+z). Projecting a structure
onto the image plane (x to the right, y down, both in nm from the top-left corner of the image)
gives one row per column with its position, its labels (phase, layer, site kind), its composition
and the intensity the incoherent HAADF model expects from it, ``sum(Z**n)`` over its atoms.

This table is the truth every image analysis in layerscope is measured against: column finding
(positions in pm), phase and mixing maps (``kind`` and ``tm_fraction``), intensity
quantification (``expected_intensity``).

Conventions
-----------
- Input atoms are ``ase.Atoms`` in Angstrom with the beam along +z; the image frame is the atoms'
  own x/y frame: ``x_nm = x_A / 10``, ``y_nm = y_A / 10``, origin at the top-left image corner.
- Labels come from ``layerscope.crystal``: ``atoms.arrays["phase"]`` (str), ``["layer"]`` (int),
  ``["site"]`` ("TM", "Li" or "O": the *site* kind, so a Ni atom on a Li-layer site is mixing).
  Structures without labels get the site kind from the species (Li/Na -> "Li", O/F/S -> "O",
  anything else -> "TM"), phase "unlabelled" and layer -1; ``DataFrame.attrs["labels"]`` says which.
- Along periodic in-plane cell vectors (``atoms.pbc[0]``/``[1]``) the projected columns are
  replicated to fill the requested field of view, so a single unit cell can make a large image.

References
----------
- P. D. Nellist and S. J. Pennycook, "The principles and interpretation of annular dark-field
  Z-contrast imaging", Adv. Imaging Electron Phys. 113, 147 (2000): incoherent imaging, intensity
  of a column ~ sum of Z^n with n ~ 1.7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from layerscope.errors import InputError

__all__ = [
    "project_columns",
    "projected_columns_with_margin",
    "field_of_view_nm",
    "TRANSITION_METALS",
    "COLUMN_FIELDS",
]

#: Atomic numbers counted as transition metals for ``tm_fraction`` (the d-block: Sc-Zn, Y-Cd, La, Hf-Hg).
TRANSITION_METALS: frozenset[int] = frozenset([*range(21, 31), *range(39, 49), 57, *range(72, 81)])

#: The columns of the ground-truth table, in order.
COLUMN_FIELDS: tuple[str, ...] = (
    "x_nm",
    "y_nm",
    "phase",
    "layer",
    "kind",
    "n_atoms",
    "composition",
    "tm_fraction",
    "expected_intensity",
)

_SITE_KINDS = ("TM", "Li", "O")
_LI_LIKE = {"Li", "Na"}
_ANION_LIKE = {"O", "F", "S"}


@dataclass(frozen=True)
class _Labels:
    phase: np.ndarray
    layer: np.ndarray
    site: np.ndarray
    inferred: tuple[str, ...]


def _labels(atoms) -> _Labels:
    n = len(atoms)
    inferred: list[str] = []
    arrays = atoms.arrays
    if "site" in arrays:
        site = np.asarray(arrays["site"]).astype(str)
        bad = sorted(set(np.unique(site)) - set(_SITE_KINDS))
        if bad:
            raise InputError(
                f"atoms.arrays['site'] holds {bad}; site kinds must be one of {list(_SITE_KINDS)} "
                f"(label the structure with layerscope.crystal or fix the labels)"
            )
    else:
        symbols = np.asarray(atoms.get_chemical_symbols())
        site = np.where(np.isin(symbols, list(_LI_LIKE)), "Li", np.where(np.isin(symbols, list(_ANION_LIKE)), "O", "TM"))
        inferred.append("site")
    if "phase" in arrays:
        phase = np.asarray(arrays["phase"]).astype(str)
    else:
        phase = np.full(n, "unlabelled")
        inferred.append("phase")
    if "layer" in arrays:
        layer = np.asarray(arrays["layer"]).astype(np.int64)
    else:
        layer = np.full(n, -1, dtype=np.int64)
        inferred.append("layer")
    return _Labels(phase, layer, site, tuple(inferred))


def field_of_view_nm(atoms) -> tuple[float, float]:
    """The default field of view ``(width, height)`` in nm: the in-plane cell lengths.

    Raises
    ------
    InputError
        When the cell's in-plane vectors are not along x and y (an oblique or rotated cell):
        then the field of view must be given explicitly.
    """
    cell = np.asarray(atoms.cell.array, dtype=float)
    a, b = cell[0], cell[1]
    if not (a[0] > 0 and b[1] > 0):
        raise InputError(
            f"the structure's cell {cell.round(3).tolist()} (A) has no positive x/y extent; give the field "
            f"of view explicitly with field_nm=(width, height) or build the structure with layerscope.crystal"
        )
    if abs(a[1]) > 1e-6 * a[0] or abs(b[0]) > 1e-6 * b[1]:
        raise InputError(
            f"the structure's in-plane cell vectors {a[:2].round(3).tolist()}, {b[:2].round(3).tolist()} (A) are "
            f"not along x and y, so the image frame is ambiguous; give field_nm=(width, height)"
        )
    return float(a[0]) / 10.0, float(b[1]) / 10.0


def _cluster_xy(xy: np.ndarray, tolerance: float, box: np.ndarray | None) -> np.ndarray:
    """Label points (Angstrom) that lie within ``tolerance`` of each other (single linkage).

    Points are first merged on a grid of ``tolerance / 4`` (exact duplicates, the common case in a
    crystal, collapse at once), then the distinct grid points are linked with a k-d tree, periodic
    where ``box`` gives a period (0 for an open axis).
    """
    q = tolerance / 4.0
    keys = np.round(xy / q).astype(np.int64)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    reps = uniq * q
    if box is not None:
        periodic = box > 0
        reps = reps.copy()
        reps[:, periodic] = np.mod(reps[:, periodic], box[periodic])
        # an open axis gets a "period" far larger than the data so that it never wraps
        lo = reps.min(axis=0)
        span = reps.max(axis=0) - lo
        boxsize = np.where(periodic, box, 4.0 * span + 10.0 * tolerance + 1.0)
        reps[:, ~periodic] -= lo[~periodic]
        reps[:, periodic] = np.where(reps[:, periodic] >= box[periodic], 0.0, reps[:, periodic])
        tree = cKDTree(reps, boxsize=boxsize)
    else:
        tree = cKDTree(reps)
    pairs = tree.query_pairs(r=tolerance, output_type="ndarray")
    m = len(reps)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    _, comp = connected_components(graph, directed=False)
    return comp[inverse]


def _mode_per_group(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """The most frequent value of ``values`` in each group (ties: the smallest value)."""
    codes, uniques = pd.factorize(values, sort=True)
    counts = np.zeros((n_groups, len(uniques)), dtype=np.int64)
    np.add.at(counts, (group, codes), 1)
    return np.asarray(uniques)[counts.argmax(axis=1)]


def _compositions(group: np.ndarray, numbers: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Composition strings ("Ni3Co1", most abundant first) and atom counts per group, vectorised."""
    from ase.data import chemical_symbols

    elements, codes = np.unique(numbers, return_inverse=True)
    counts = np.zeros((n_groups, len(elements)), dtype=np.int64)
    np.add.at(counts, (group, codes.ravel()), 1)
    patterns, which = np.unique(counts, axis=0, return_inverse=True)
    names = []
    for row in patterns:  # one string per distinct composition (a handful), not per column
        order = sorted(np.flatnonzero(row), key=lambda k: (-row[k], chemical_symbols[elements[k]]))
        names.append("".join(f"{chemical_symbols[elements[k]]}{row[k]}" for k in order))
    return np.asarray(names, dtype=object)[which.ravel()], counts.sum(axis=1)


def _check_atoms(atoms) -> None:
    if not hasattr(atoms, "get_positions") or not hasattr(atoms, "numbers"):
        raise InputError(
            f"expected an ase.Atoms structure (Angstrom, beam along +z), got {type(atoms).__name__}; "
            f"build one with layerscope.crystal or ase.io.read"
        )
    if len(atoms) == 0:
        raise InputError("the structure has no atoms; nothing to project")


def _project_unit(atoms, tolerance_nm: float, z_exponent: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Columns of ``atoms`` itself (no replication), positions in Angstrom; also the column of each atom."""
    if not (np.isfinite(tolerance_nm) and tolerance_nm > 0):
        raise InputError(f"tolerance_nm={tolerance_nm!r} must be a positive length in nm (e.g. 0.02)")
    if not (np.isfinite(z_exponent) and z_exponent > 0):
        raise InputError(f"z_exponent={z_exponent!r} must be positive (about 1.7 for HAADF)")
    if np.any(atoms.numbers == 0):  # ASE dummy atoms "X" (empty sites of a builder) scatter nothing
        atoms = atoms[atoms.numbers > 0]
        if len(atoms) == 0:
            raise InputError("the structure holds only dummy atoms 'X' (empty sites); nothing to project")
    labels = _labels(atoms)
    xy = np.asarray(atoms.get_positions(), dtype=float)[:, :2].copy()
    cell = np.asarray(atoms.cell.array, dtype=float)
    pbc = np.asarray(atoms.pbc[:2], dtype=bool)
    box = None
    if pbc.any():
        periods = np.array([cell[0, 0], cell[1, 1]])
        rectangular = abs(cell[0, 1]) < 1e-9 and abs(cell[1, 0]) < 1e-9
        if not rectangular or np.any(periods[pbc] <= 0):
            raise InputError(
                "periodic projection needs in-plane cell vectors along x and y; rotate the structure so "
                "that a is along x and b along y, or set atoms.pbc = False for a finite model"
            )
        box = np.where(pbc, periods, 0.0)
        xy[:, pbc] = np.mod(xy[:, pbc], periods[pbc])
    tol_A = 10.0 * tolerance_nm
    group = _cluster_xy(xy, tol_A, box)
    n_groups = int(group.max()) + 1

    # column centre: mean of the atoms unwrapped around the column's first atom (minimum image)
    first = np.unique(group, return_index=True)[1]  # labels are 0..n_groups-1: the first atom of each
    ref = xy[first[group]]
    d = xy - ref
    if box is not None:
        for k in np.flatnonzero(pbc):
            d[:, k] -= box[k] * np.round(d[:, k] / box[k])
    counts = np.bincount(group, minlength=n_groups)
    mean_d = np.stack([np.bincount(group, d[:, k], n_groups) for k in range(2)], axis=1) / counts[:, None]
    spread = np.hypot(*(d - mean_d[group]).T)
    if spread.max() > 2.0 * tol_A:
        raise InputError(
            f"atoms linked into one column lie up to {spread.max() / 10:.3f} nm from its centre (tolerance_nm="
            f"{tolerance_nm}); the structure is not a set of well-defined columns along the beam: lower "
            f"tolerance_nm or check the zone axis"
        )
    centre = xy[first] + mean_d
    if box is not None:
        for k in np.flatnonzero(pbc):
            centre[:, k] = np.mod(centre[:, k], box[k])
            centre[centre[:, k] >= box[k], k] = 0.0  # -1e-17 mod L rounds to L

    numbers = np.asarray(atoms.numbers)
    zn = numbers.astype(float) ** z_exponent
    tm = np.isin(numbers, list(TRANSITION_METALS))
    composition, n_atoms = _compositions(group, numbers, n_groups)
    table = pd.DataFrame(
        {
            "x_A": centre[:, 0],
            "y_A": centre[:, 1],
            "phase": _mode_per_group(group, labels.phase, n_groups),
            "layer": _mode_per_group(group, labels.layer, n_groups).astype(np.int64),
            "kind": _mode_per_group(group, labels.site, n_groups),
            "n_atoms": n_atoms.astype(np.int64),
            "composition": composition,
            "tm_fraction": np.bincount(group, tm.astype(float), n_groups) / counts,
            "expected_intensity": np.bincount(group, zn, n_groups),
        }
    )
    table.attrs["labels_inferred"] = list(labels.inferred)
    return table, group


def projected_columns_with_margin(
    atoms,
    *,
    field_nm: tuple[float, float] | None = None,
    margin_nm: float = 0.0,
    tolerance_nm: float = 0.02,
    z_exponent: float = 1.7,
) -> pd.DataFrame:
    """Projected columns in and around the field of view (for rendering), with an ``in_field`` flag.

    Like :func:`project_columns`, but also keeps the columns within ``margin_nm`` outside the
    field (replicated along periodic cell vectors, or the structure's own atoms beyond the edge),
    whose probe tails reach into the image. Parameters as in :func:`project_columns`.
    """
    _check_atoms(atoms)
    width, height = field_of_view_nm(atoms) if field_nm is None else (float(field_nm[0]), float(field_nm[1]))
    if not (np.isfinite(width) and np.isfinite(height) and width > 0 and height > 0):
        raise InputError(f"field_nm={field_nm!r} must be two positive lengths (width, height) in nm")
    unit, _ = _project_unit(atoms, tolerance_nm, z_exponent)
    xy = unit[["x_A", "y_A"]].to_numpy() / 10.0
    pbc = np.asarray(atoms.pbc[:2], dtype=bool)
    periods = np.array([atoms.cell[0, 0], atoms.cell[1, 1]]) / 10.0
    ranges = []
    for k, extent in enumerate((width, height)):
        if pbc[k]:
            lo = int(np.floor((-margin_nm - xy[:, k].max()) / periods[k]))
            hi = int(np.ceil((extent + margin_nm - xy[:, k].min()) / periods[k]))
            ranges.append(np.arange(lo, hi + 1))
        else:
            ranges.append(np.array([0]))
    ix, iy = np.meshgrid(ranges[0], ranges[1], indexing="ij")
    shifts = np.stack([ix.ravel() * (periods[0] if pbc[0] else 0.0), iy.ravel() * (periods[1] if pbc[1] else 0.0)], 1)
    n_unit = len(unit)
    pos = (xy[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    keep = (
        (pos[:, 0] >= -margin_nm)
        & (pos[:, 0] < width + margin_nm)
        & (pos[:, 1] >= -margin_nm)
        & (pos[:, 1] < height + margin_nm)
    )
    source = np.tile(np.arange(n_unit), len(shifts))[keep]
    table = unit.iloc[source].drop(columns=["x_A", "y_A"]).reset_index(drop=True)
    table.insert(0, "x_nm", pos[keep, 0])
    table.insert(1, "y_nm", pos[keep, 1])
    table["in_field"] = (
        (table["x_nm"] >= 0) & (table["x_nm"] < width) & (table["y_nm"] >= 0) & (table["y_nm"] < height)
    ).to_numpy()
    table.attrs.update(unit.attrs)
    table.attrs.update({"field_nm": [width, height], "tolerance_nm": tolerance_nm, "z_exponent": z_exponent})
    return table


def project_columns(
    atoms,
    *,
    tolerance_nm: float = 0.02,
    z_exponent: float = 1.7,
    field_nm: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Project a structure along the beam (+z) into its atom columns: the image's ground truth.

    Atoms closer than ``tolerance_nm`` to each other in projection are linked into one column
    (single linkage); the column position is the mean of its atoms' projected positions.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure in Angstrom, beam along +z; labels in ``atoms.arrays`` ``"phase"``, ``"layer"``,
        ``"site"`` as written by :mod:`layerscope.crystal` (inferred from species when absent).
    tolerance_nm : float
        Largest in-plane distance (nm) between atoms of one column. The default, 0.02 nm (20 pm),
        is well below the closest column spacing of layered oxides along [100]/[110] (~80 pm) and
        above thermal displacements of a relaxed model.
    z_exponent : float
        Exponent ``n`` of ``expected_intensity = sum(Z**n)`` (~1.7 for HAADF, Nellist & Pennycook 2000).
    field_nm : (float, float), optional
        Field of view ``(width, height)`` in nm from the origin of the atoms' frame. Default: the
        in-plane cell lengths (the cell's a along x, b along y). Along periodic axes the columns are
        replicated to fill the field.

    Returns
    -------
    pandas.DataFrame
        One row per column whose centre lies in the field (``0 <= x_nm < width``,
        ``0 <= y_nm < height``), sorted by ``y_nm`` then ``x_nm``: ``x_nm``, ``y_nm`` (nm from the
        image's top-left corner), ``phase``, ``layer`` (int), ``kind`` ("TM", "Li", "O": the site
        kind of most of its atoms), ``n_atoms``, ``composition`` (e.g. "Ni3Co1", most abundant
        first), ``tm_fraction`` (fraction of its atoms that are transition metals: the truth for
        Li/TM mixing on Li sites), ``expected_intensity`` (``sum(Z**n)``, dimensionless).
        ``DataFrame.attrs`` holds ``field_nm``, ``tolerance_nm``, ``z_exponent`` and
        ``labels_inferred`` (labels taken from the species because the structure had none).

    Raises
    ------
    InputError
        For a non-structure input, an empty structure, an ambiguous frame (oblique cell without
        ``field_nm``), or atoms that do not form columns within the tolerance.

    Examples
    --------
    >>> from layerscope.simulate import project_columns
    >>> table = project_columns(atoms)                    # doctest: +SKIP
    >>> table.groupby("kind").expected_intensity.mean()   # doctest: +SKIP
    """
    table = projected_columns_with_margin(
        atoms, field_nm=field_nm, margin_nm=0.0, tolerance_nm=tolerance_nm, z_exponent=z_exponent
    )
    out = table[table["in_field"]].drop(columns=["in_field"])
    out = out.sort_values(["y_nm", "x_nm"], kind="stable").reset_index(drop=True)
    out = out[list(COLUMN_FIELDS)]
    out.attrs.update(table.attrs)
    return out
