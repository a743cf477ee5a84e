"""The same pipeline on a dask.distributed LocalCluster gives the same numbers as in this process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.synthetic import FrontSpec, LayeredLattice, VoidSpec, synthetic_series


def test_local_cluster_equals_in_process():
    distributed = pytest.importorskip("distributed")
    series, _ = synthetic_series(
        shape=(192, 192), n_frames=8, lattice=LayeredLattice(layer_angle_deg=4.0),
        front=FrontSpec(position_nm=3.0, velocity_nm_per_s=0.15, direction_deg=4.0, width_nm=2.0),
        voids=[VoidSpec(2.0, 4.0, 0.6, growth_nm_per_s=0.05), VoidSpec(4.6, 2.2, 0.5)], counts_per_pixel=200.0, seed=41)
    options = InsituOptions(fronts=True, reference="hybrid", chunk_frames=3)
    local = analyse_series(series, options=options)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = analyse_series(series, options=options, scheduler=client)
        by_address = analyse_series(series, options=options, scheduler=cluster.scheduler_address)
    for other in (remote, by_address):
        pd.testing.assert_frame_equal(local.frames, other.frames, check_exact=True)
        pd.testing.assert_frame_equal(local.voids, other.voids, check_exact=True)
        pd.testing.assert_frame_equal(local.fronts, other.fronts, check_exact=True)
        assert local.summary["front"]["velocity_nm_per_s"] == other.summary["front"]["velocity_nm_per_s"]
    assert np.isfinite(local.summary["front"]["velocity_nm_per_s"])
