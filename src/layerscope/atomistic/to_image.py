"""From a relaxed atomistic model to a simulated HAADF image to hold against an experiment.

A boundary model (:func:`~layerscope.atomistic.structures.twin_boundary`,
:func:`~layerscope.atomistic.structures.tilt_boundary`, relaxed or not) is turned so that the beam
runs along a lattice direction lying in the boundary plane (the boundary is then edge-on), the
boundary normal points down the image (+y, image rows) and the cell is orthogonal (a rotation,
then abTEM's ``orthogonalize_cell`` (repetitions, and a small strain when no exactly orthogonal supercell
exists within ``max_repetitions``; the strain is reported)). The oriented model is repeated along
the beam to the requested thickness and imaged with the foundation simulator
:func:`layerscope.simulate.simulate_haadf` (incoherent model; use
``layerscope.simulate.simulate_multislice`` on the same oriented model for exact multislice).

Default beam directions: the twin is viewed along its shortest in-plane lattice vector (an
a-axis of both grains, the <100> zone of the seed study), the [0001] tilt boundary along c.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from layerscope.errors import InputError

__all__ = ["boundary_view", "simulate_boundary_image"]


def _in_plane_lattice_vectors(atoms: Atoms, normal: np.ndarray, n_max: int = 3) -> np.ndarray:
    """Lattice vectors of ``atoms`` lying in the plane with ``normal`` (shortest first)."""
    cell = atoms.cell.array
    rng = np.arange(-n_max, n_max + 1)
    ijk = np.array(np.meshgrid(rng, rng, rng, indexing="ij")).reshape(3, -1).T
    ijk = ijk[np.any(ijk != 0, axis=1)]
    vecs = ijk @ cell
    inplane = vecs[np.abs(vecs @ normal) < 1e-3]
    if len(inplane) == 0:
        raise InputError("no lattice vector lies in the boundary plane within 3 cell repeats")
    return inplane[np.argsort(np.linalg.norm(inplane, axis=1))]


def boundary_view(
    atoms: Atoms,
    *,
    beam: np.ndarray | None = None,
    max_repetitions: int = 6,
) -> tuple[Atoms, dict[str, Any]]:
    """Orient a boundary model for imaging: beam along +z, boundary normal along +y, orthogonal cell.

    Parameters
    ----------
    atoms : ase.Atoms
        A model with ``info["boundary"]`` (normal, plane heights, period).
    beam : array of 3 float, optional
        Beam direction (Cartesian, in the model's frame); must lie in the boundary plane.
        Default: c for a tilt boundary, the shortest in-plane lattice vector for a twin.
    max_repetitions : int
        Passed to abTEM's ``orthogonalize_cell``.

    Returns
    -------
    tuple
        The oriented :class:`ase.Atoms` (labels kept) and a dict with ``beam``, ``strain``
        (largest absolute strain abTEM applied) and the cell lengths (Å).
    """
    from abtem.atoms import orthogonalize_cell

    from layerscope.atomistic.structures import boundary_geometry

    info = atoms.info.get("boundary")
    if info is None:
        raise InputError("atoms has no info['boundary']; build the model with twin_boundary or tilt_boundary")
    normal = boundary_geometry(atoms)[0]
    if beam is None:
        if info["kind"] == "tilt":
            beam = np.asarray(info["c_axis"], dtype=float)
        else:
            beam = _in_plane_lattice_vectors(atoms, normal)[0]
    beam = np.asarray(beam, dtype=float)
    beam = beam / np.linalg.norm(beam)
    if abs(beam @ normal) > 1e-3:
        raise InputError("the beam direction is not in the boundary plane, so the boundary would not be edge-on; "
                         "give a direction perpendicular to the boundary normal (boundary_geometry)")
    x_dir = np.cross(normal, beam)
    rotation = np.array([x_dir, normal, beam])  # rows: new x, y, z in the model's frame (right-handed)
    turned = atoms.copy()
    turned.positions = atoms.positions @ rotation.T
    turned.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    oriented, matrix = orthogonalize_cell(turned, max_repetitions=max_repetitions, return_transform_matrix=True)
    matrix = np.asarray(matrix, dtype=float)
    strain = float(np.max(np.abs(0.5 * (matrix @ matrix.T - np.eye(3)))))  # Green-Lagrange strain
    oriented.info = {k: v for k, v in atoms.info.items() if k != "boundary"}
    return oriented, {"beam": beam.tolist(), "x_direction": x_dir.tolist(), "strain": strain,
                      "cell_A": oriented.cell.lengths().tolist()}


def simulate_boundary_image(
    atoms: Atoms,
    *,
    pixel_size_nm: float,
    probe_fwhm_nm: float,
    thickness_nm: float,
    beam: np.ndarray | None = None,
    z_exponent: float = 1.7,
    max_repetitions: int = 6,
):
    """Incoherent HAADF image of a boundary model viewed edge-on.

    Parameters
    ----------
    atoms : ase.Atoms
        A (relaxed) boundary model with ``info["boundary"]``.
    pixel_size_nm : float
        Pixel size, nm.
    probe_fwhm_nm : float
        Effective probe FWHM, nm (0.07-0.10 nm mimics an aberration-corrected 200 kV probe).
    thickness_nm : float
        Specimen thickness along the beam, nm: the oriented cell is repeated to at least this.
    beam : array of 3 float, optional
        See :func:`boundary_view`.
    z_exponent : float
        Column weight exponent of the incoherent model.
    max_repetitions : int

    Returns
    -------
    tuple
        The :class:`layerscope.simulate.Simulation` (image in nm units, ground-truth columns) and
        the oriented atoms.
    """
    from layerscope.simulate import simulate_haadf

    if not (np.isfinite(thickness_nm) and thickness_nm > 0):
        raise InputError(f"thickness_nm={thickness_nm} must be a positive thickness in nm (e.g. 5)")
    oriented, view = boundary_view(atoms, beam=beam, max_repetitions=max_repetitions)
    n_z = max(1, int(np.ceil(thickness_nm * 10.0 / oriented.cell.lengths()[2])))
    thick = oriented.repeat((1, 1, n_z))
    lx, ly = thick.cell.lengths()[:2]
    sim = simulate_haadf(thick, pixel_size_nm=pixel_size_nm, probe_fwhm_nm=probe_fwhm_nm, z_exponent=z_exponent,
                         field_nm=(lx / 10.0, ly / 10.0))
    sim.image.metadata.setdefault("title", "boundary model")
    sim.image.metadata["atomistic_view"] = {**view, "thickness_nm": n_z * oriented.cell.lengths()[2] / 10.0}
    return sim, thick
