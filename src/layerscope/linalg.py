"""Least squares, pseudo-inverse and SVD that do not fail on well-conditioned problems.

NumPy's ``svd``, ``pinv`` and ``lstsq`` call LAPACK's divide-and-conquer drivers (``gesdd``,
``gelsd``). The OpenBLAS 0.3.31 of the NumPy 2.4 wheels raises "SVD did not converge" from its
SkylakeX (AVX-512) kernels on perfectly conditioned matrices (a 488 x 459 harmonic basis of
condition number 1.4 in :mod:`layerscope.simulate.periodic`), while the same call passes on other
processors. The functions here use the QR-iteration SVD (``gesvd``) and the complete orthogonal
factorisation (``gelsy``) through SciPy, which do not take that path. Every layerscope module solves
its least-squares problems through this module.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["svd", "pinv", "lstsq"]


def svd(a: np.ndarray, *, full_matrices: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Singular value decomposition ``a = u @ diag(s) @ vt`` through LAPACK ``gesvd``.

    Parameters
    ----------
    a : array_like, shape (m, n)
        A finite matrix.
    full_matrices : bool
        As in :func:`numpy.linalg.svd`.

    Returns
    -------
    u, s, vt : numpy.ndarray
        As from :func:`numpy.linalg.svd`.
    """
    return scipy.linalg.svd(np.asarray(a, dtype=float), full_matrices=full_matrices,
                            lapack_driver="gesvd", check_finite=False)


def pinv(a: np.ndarray, *, rcond: float | None = None) -> np.ndarray:
    """Moore–Penrose pseudo-inverse of one matrix or a stack of matrices (``gesvd``).

    Parameters
    ----------
    a : array_like, shape (..., m, n)
        Finite matrices.
    rcond : float, optional
        Singular values below ``rcond * s_max`` are treated as zero; the default is NumPy's
        (``max(m, n) * eps``).

    Returns
    -------
    numpy.ndarray, shape (..., n, m)
    """
    arr = np.asarray(a, dtype=float)
    if arr.ndim > 2:
        flat = arr.reshape((-1,) + arr.shape[-2:])
        return np.stack([pinv(m, rcond=rcond) for m in flat]).reshape(arr.shape[:-2] + arr.shape[-2:][::-1])
    m, n = arr.shape
    if arr.size == 0:
        return np.zeros((n, m))
    u, s, vt = svd(arr)
    cut = (max(m, n) * np.finfo(float).eps if rcond is None else rcond) * (s[0] if s.size else 0.0)
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > cut)
    return (vt.T * inv) @ u.T


def lstsq(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """Least-squares solution of ``a @ x = b`` by LAPACK ``gelsy`` (QR with column pivoting).

    Parameters
    ----------
    a : array_like, shape (m, n)
    b : array_like, shape (m,) or (m, k)

    Returns
    -------
    x : numpy.ndarray, shape (n,) or (n, k)
    rank : int
        The effective rank of ``a``.
    """
    x, _, rank, _ = scipy.linalg.lstsq(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                       lapack_driver="gelsy", check_finite=False)
    return x, int(rank)
