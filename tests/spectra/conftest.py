"""Fixtures for the EELS tests: real files read with an independent reader, small simulated data."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

EELS = Path("eels")


def hs_load(path: Path, **kw):
    """Load a file with HyperSpy/eXSpy (the independent reference implementation)."""
    warnings.filterwarnings("ignore")
    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    logging.getLogger("exspy").setLevel(logging.ERROR)
    logging.getLogger("rsciio").setLevel(logging.ERROR)
    import hyperspy.api as hs

    s = hs.load(str(path), **kw)
    s.change_dtype("float64")
    return s


@pytest.fixture(scope="session")
def exspy_pair(shared_data):
    """eXSpy's example core loss and matching low loss (real Mn oxide, 0.2 eV/channel)."""
    d = shared_data / "eels" / "exspy"
    cl = hs_load(d / "coreloss_spectrum.msa", signal_type="EELS")
    ll = hs_load(d / "lowloss_spectrum.msa", signal_type="EELS")
    return cl, ll


@pytest.fixture(scope="session")
def lsmo(shared_data):
    """The three La0.7Sr0.3MnO3 Mn L2,3 spectra of the EELS Data Base (Nord et al. 2015)."""
    from layerscope.io import load

    d = shared_data / "eels" / "eelsdb_via_nomad"
    stem = "la0-7sr0-3mno3srtio3-001-heterostructure"
    out = {}
    # the files' x units are "<undefined>": confirm the eV calibration of their headers (MANIFEST)
    for key, suffix, offset, scale in (("stoichiometric", "", 628.4, 0.2),
                                       ("oxygen_deficient", "-oxygen-vacancie", 628.4, 0.2),
                                       ("brownmillerite", "-brown-millerite-oxygen-vacancie", 644.7, 0.1)):
        s = load(d / f"{stem}{suffix}.msa", offset_eV=offset, scale_eV=scale)
        out[key] = (np.asarray(s.energy_eV), np.asarray(s.data, dtype=np.float64))
    return out
