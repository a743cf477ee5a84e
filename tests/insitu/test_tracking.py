"""Tracking: events on hand-made masks, and nucleation/coalescence in the synthetic series."""

from __future__ import annotations

import numpy as np

from layerscope.insitu.tracking import TrackedFeature, track_features


def _disk(r0, c0, radius):
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return TrackedFeature(frame=0, index=0, row0=r0 - radius, col0=c0 - radius, mask=xx**2 + yy**2 <= radius**2,
                          area_nm2=float(np.pi * radius**2), x_nm=float(c0), y_nm=float(r0), truncated=False)


def _frame(t, feats):
    out = []
    for k, f in enumerate(feats):
        f.frame, f.index = t, k
        out.append(f)
    return out


def test_events_on_hand_made_features():
    frames = {
        0: _frame(0, [_disk(10, 10, 3), _disk(10, 20, 3)]),
        1: _frame(1, [_disk(10, 10, 4), _disk(10, 20, 4), _disk(30, 30, 2)]),  # growth; a nucleation
        2: _frame(2, [_disk(10, 15, 7), _disk(30, 30, 2)]),  # the first two merge
        3: _frame(3, [_disk(10, 15, 7)]),  # the small one disappears
        4: _frame(4, [_disk(10, 9, 3), _disk(10, 21, 3)]),  # the merged one splits
    }
    assign, events = track_features(frames, np.arange(5.0), contact_frames=0)
    kinds = list(zip(events["frame"], events["event"]))
    assert kinds == [(0, "nucleation"), (0, "nucleation"), (1, "nucleation"), (2, "coalescence"), (2, "merged"),
                     (3, "disappearance"), (4, "split")]
    ids = assign.set_index(["frame", "index"])["track_id"]
    assert ids[(1, 0)] == ids[(0, 0)] and ids[(1, 1)] == ids[(0, 1)]
    assert ids[(2, 0)] in (ids[(0, 0)], ids[(0, 1)])
    assert ids[(4, 0)] == ids[(2, 0)] or ids[(4, 1)] == ids[(2, 0)]


def test_a_contact_that_parts_again_is_not_a_coalescence():
    """Two voids whose outlines touch for a frame and part: no events, both tracks go on."""
    def pair(t, joined):
        if joined:
            return _frame(t, [_disk(10, 15, 7)])
        return _frame(t, [_disk(10, 10, 4), _disk(10, 20, 4)])

    frames = {t: pair(t, t in (2, 5, 6)) for t in range(12)}
    frames[11] = _frame(11, [_disk(10, 15, 8)])  # a real coalescence: stays joined
    frames[12] = _frame(12, [_disk(10, 15, 8)])
    frames[13] = _frame(13, [_disk(10, 15, 8)])
    frames[14] = _frame(14, [_disk(10, 15, 8)])
    assign, events = track_features(frames, np.arange(15.0), contact_frames=3)
    kinds = list(zip(events["frame"], events["event"]))
    assert kinds == [(0, "nucleation"), (0, "nucleation"), (11, "coalescence"), (11, "merged")]
    ids = assign.set_index(["frame", "index"])["track_id"]
    assert {ids[(t, 0)] for t in (0, 3, 7, 10)} == {ids[(0, 0)]}
    assert {ids[(t, 1)] for t in (0, 3, 7, 10)} == {ids[(0, 1)]}
    # without the window every touch is a coalescence and every parting a split with a new track
    _, literal = track_features(frames, np.arange(15.0), contact_frames=0)
    counts = literal["event"].value_counts()
    assert counts["coalescence"] == 3 and counts["split"] == 2


def test_nucleation_and_coalescence_times_in_the_synthetic_series(degrading, degrading_result):
    _, truth = degrading
    ev = degrading_result.events
    late = truth.voids[1]
    nuc = ev[(ev["event"] == "nucleation") & (np.hypot(ev["x_nm"] - late.x_nm, ev["y_nm"] - late.y_nm) < 0.3)]
    assert list(nuc["frame"]) == [int(np.ceil(late.nucleation_s))]  # first frame after it nucleated
    # the pair's gap closes from 0.5 nm at t = 0 to contact at t = 6.25 s; the half-depth outlines join
    # once the gap is below about two smoothing sigmas (0.5 nm): between t = 0 and the contact
    co = ev[ev["event"] == "coalescence"]
    assert len(co) == 1
    assert 0 < int(co["frame"].iloc[0]) <= 7
    assert (ev["event"] == "merged").sum() == 1
    # one track per void until the merge; four tracks in all
    assert len(degrading_result.tracks) == 4
    assert degrading_result.tracks["growth_nm2_per_s"].dropna().gt(0).all()


def test_a_negative_contact_window_is_refused():
    from layerscope.errors import InputError
    from layerscope.insitu.pipeline import InsituOptions

    import pytest

    with pytest.raises(InputError, match="--contact-frames"):
        InsituOptions(contact_frames=-1)
    with pytest.raises(InputError, match="--contact-frames"):
        track_features({}, np.arange(1.0), contact_frames=-2)
