"""3-D tomography (X-ray CT, TXM, electron tomography) of cracked cathode particles: reconstruction, particles, cracks and pores.

``read_tomo`` reads projections (DXchange HDF5, TIFF stacks with angles, MRC tilt series) or
volumes; ``analyse(data, TomoOptions(...))`` reconstructs (ASTRA FBP/SIRT/CGLS, algotom centre
and ring removal) and measures particles and cracks without file I/O; ``TomoResult.write(out)``
writes the tables, figures, summary and report. ``default_phantom``/``project_phantom`` build
synthetic cracked particles with known truth.
"""

from layerscope.tomo.analysis import TomoOptions, TomoResult, analyse
from layerscope.tomo.phantom import build_phantom, default_phantom, project_phantom
from layerscope.tomo.readers import Projections, Volume, as_volume, parse_angles, read_tomo
from layerscope.tomo.recon import ReconOptions, Reconstruction, reconstruct

__all__ = ["TomoOptions", "TomoResult", "analyse", "ReconOptions", "Reconstruction", "reconstruct", "read_tomo",
           "parse_angles", "as_volume", "Projections", "Volume", "build_phantom", "default_phantom", "project_phantom"]
