"""Which crack orientations a limited tilt range samples (issue 20; the missing wedge; no file I/O).

The projections are parallel-beam about the volume's z axis (:func:`layerscope.tomo.recon.reconstruct`: each z
slice is one 2-D sinogram), so a projection at tilt ``t`` (deg) samples, by the Fourier slice theorem, the Fourier
plane spanned by z and the detector direction ``(y, x) = (-sin t, cos t)`` (ASTRA's parallel geometry on the
``(y, x)`` grid: at 0 deg the detector lies along x, at -90 deg along y). A thin planar crack's transform is a line
along its normal, so the crack is seen sharp where a sampled tilt holds its normal, i.e. near the tilt
:func:`edge_on_tilt_deg` at which the beam runs in the crack's plane; a crack whose normal points into the tilts
not recorded (the missing wedge, ``180 - span`` deg wide) is smeared along the beam.

:func:`wedge_angle_deg` is the signed angle (deg, in 3-D) between a normal and the missing wedge's nearest edge:
positive where the normal lies among the sampled directions (that far from the wedge), negative inside the wedge.
A normal along the rotation axis (z) lies on every sampled plane: its angle is 0 whatever its in-plane direction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["WEDGE_MARGIN_DEG", "edge_on_tilt_deg", "inplane_wedge_angle_deg", "mark_cracks", "rule_text",
           "tilt_interval_deg", "wedge_angle_deg"]


def tilt_interval_deg(angles_deg, limited_span_deg: float) -> tuple[float, float] | None:
    """The sampled tilts ``(lowest, highest)`` (deg) of a series spanning less than ``limited_span_deg`` (a missing
    wedge); None for a fuller series (no crack is in a wedge) or no angles."""
    a = np.asarray(angles_deg, float)
    if a.size == 0 or float(np.ptp(a)) >= limited_span_deg:
        return None
    return float(a.min()), float(a.max())


def edge_on_tilt_deg(normals_zyx) -> np.ndarray:
    """The tilt (deg, in [-90, 90)) at which the beam runs in the plane of each normal ``(z, y, x)`` (rows): the
    detector lies along the normal's (y, x) part there. NaN for a normal along z."""
    n = np.atleast_2d(np.asarray(normals_zyx, float))
    t = np.degrees(np.arctan2(-n[:, 1], n[:, 2]))
    t = (t + 90.0) % 180.0 - 90.0
    return np.where(np.hypot(n[:, 1], n[:, 2]) > 0, t, np.nan)


def inplane_wedge_angle_deg(normals_zyx, interval_deg: tuple[float, float]) -> np.ndarray:
    """Signed in-plane angle (deg) between each normal's edge-on tilt and the missing wedge's nearest edge, the z part
    ignored: positive inside the sampled tilts ``interval_deg``, negative in the wedge (at most 90 either way)."""
    lo, hi = interval_deg
    t = edge_on_tilt_deg(normals_zyx)
    # the edge-on tilt, wrapped by 180 deg into [lo, lo + 180): inside [lo, hi] sampled, beyond it the wedge
    u = lo + (t - lo) % 180.0
    inside = np.minimum(u - lo, hi - u)
    outside = np.minimum(u - hi, lo + 180.0 - u)
    return np.minimum(np.where(u <= hi, inside, -outside), 90.0)


def wedge_angle_deg(normals_zyx, interval_deg: tuple[float, float] | None) -> np.ndarray:
    """Signed 3-D angle (deg) between each unit normal ``(z, y, x)`` and the missing wedge's nearest edge plane (the
    plane holding z and the detector direction at the last sampled tilt on that side): positive where the normal is
    among the sampled directions, negative in the wedge; 0 for a normal along z. NaN for all where ``interval_deg``
    is None (no wedge)."""
    n = np.atleast_2d(np.asarray(normals_zyx, float))
    if interval_deg is None:
        return np.full(len(n), np.nan)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    d = inplane_wedge_angle_deg(n, interval_deg)
    s = np.hypot(n[:, 1], n[:, 2]) * np.sin(np.radians(np.abs(np.nan_to_num(d))))
    return np.sign(np.nan_to_num(d)) * np.degrees(np.arcsin(np.clip(s, 0.0, 1.0)))


#: A crack whose normal lies in the missing wedge or less than this far (deg, :func:`wedge_angle_deg`) outside it is
#: ``in_missing_wedge`` (cracks.csv) and left out of the counts of visible cracks (docs/validation.md "tomowedge2").
WEDGE_MARGIN_DEG = 10.0


def rule_text(interval_deg: tuple[float, float], margin_deg: float = WEDGE_MARGIN_DEG) -> str:
    """One sentence naming the crack orientations the visible counts cover on the tilts ``interval_deg``."""
    lo, hi = interval_deg
    return (f"tilts {lo:.0f} to {hi:.0f} deg about z leave a missing wedge of {180.0 - (hi - lo):.0f} deg: cracks "
            f"whose normals lie in it or within {margin_deg:g} deg of it (cracks.csv in_missing_wedge, "
            "wedge_angle_deg) are not reliably seen; crack_count_visible and n_cracks_visible count only the others")


def mark_cracks(cracks, parts, angles_deg, limited_span_deg: float, margin_deg: float = WEDGE_MARGIN_DEG):
    """``cracks`` with ``wedge_angle_deg`` (:func:`wedge_angle_deg` of each measured normal; NaN without a wedge) and
    ``in_missing_wedge`` (that angle below ``margin_deg``; False without a wedge), ``parts`` with
    ``crack_count_visible`` (each particle's cracks not in the wedge), and the summary's entries: ``n_cracks_visible``
    and, on a limited tilt range (``angles_deg`` spanning under ``limited_span_deg``; None: a volume),
    ``missing_wedge`` (the sampled tilts, the margin and :func:`rule_text`)."""
    interval = None if angles_deg is None else tilt_interval_deg(angles_deg, limited_span_deg)
    cracks, parts = cracks.copy(), parts.copy()
    normals = cracks[["normal_z", "normal_y", "normal_x"]].to_numpy(float) if len(cracks) else np.zeros((0, 3))
    angle = wedge_angle_deg(normals, interval) if len(cracks) else np.zeros(0)
    cracks["wedge_angle_deg"] = angle
    cracks["in_missing_wedge"] = angle < margin_deg if interval is not None else np.zeros(len(cracks), bool)
    if "particle" in parts:
        seen = cracks.loc[~cracks["in_missing_wedge"].astype(bool), "particle"] if len(cracks) else pd.Series([])
        parts["crack_count_visible"] = [int((seen == p).sum()) for p in parts["particle"]]
    summary = {"n_cracks_visible": int((~cracks["in_missing_wedge"].astype(bool)).sum())}
    if interval is not None:
        summary["missing_wedge"] = {"sampled_tilts_deg": list(interval), "margin_deg": margin_deg,
                                    "rule": rule_text(interval, margin_deg)}
    return cracks, parts, summary
